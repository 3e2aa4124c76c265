#include "perf/compare.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <memory>

#include "common/error.h"
#include "io/safetensors.h"
#include "model/weights.h"
#include "perf/eval_bench.h"
#include "perf/step_bench.h"

namespace pgolf {
namespace {

// A fresh private folder for the shared initial weights and the harness log.
std::filesystem::path make_work_dir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "pgolf-compare-XXXXXX").string();
  PGOLF_CHECK(::mkdtemp(pattern.data()) != nullptr, "cannot create a folder under {}",
              std::filesystem::temp_directory_path().string());
  return pattern;
}

std::string peer_name(const std::string& mode) { return "pytorch " + mode; }

}  // namespace

double ImplTiming::median() const {
  PGOLF_CHECK(!tokens_per_s.empty(), "{}: no repeats timed", name);
  auto v = tokens_per_s;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

CompareResult compare_with_peer(const Config& config, const CompareOptions& options,
                                torch::Device device) {
  PGOLF_CHECK(options.steps > 0 && options.repeats > 0 && options.warmup >= 0,
              "--steps and --repeats must be positive, --warmup not negative");
  PGOLF_CHECK(options.eval_batch_seqs == 0 || options.eval_batches > 0,
              "--eval-batches must be positive");
  peer_entry_for(config);  // a clear error before any work
  const auto dir = make_work_dir();
  StepBench pgolf_step(config, options.batch_tokens, device);
  // Seeded alike, so it starts from the same weights as the step's model.
  std::unique_ptr<EvalBench> pgolf_eval;
  if (options.eval_batch_seqs > 0) {
    pgolf_eval =
        std::make_unique<EvalBench>(config, options.eval_batch_seqs, options.eval_stride, device);
  }
  // The peer starts from pgolf's initial weights (the same draws as the
  // script's own init for the baseline, but this makes it so by construction).
  PeerSetup setup = options.peer;
  setup.weights = dir / "init.safetensors";
  // and steps on the same tokens (for #1855 the packed row's BOS positions,
  // hence its attention segments, are the same too)
  setup.tokens = dir / "tokens.safetensors";
  setup.log = dir / "peer.log";
  setup.warmup = std::max<int64_t>(options.warmup, 1);
  setup.eval_seqs = options.eval_batch_seqs;
  write_safetensors(setup.weights, state_dict(pgolf_step.model()));
  write_safetensors(setup.tokens, {{"tokens", pgolf_step.tokens()}});
  PeerHarness peer(config, options.batch_tokens, options.threads, setup);
  pgolf_step.run(options.warmup);
  if (pgolf_eval) pgolf_eval->run(std::max<int64_t>(options.warmup, 1));

  CompareResult result;
  result.peer_header = peer.header();
  result.flops_per_token = pgolf_step.flops_per_token();
  result.params = parameter_count(pgolf_step.model());
  std::vector<std::string> order = {"pgolf"};
  for (const auto& m : setup.modes) order.push_back(m);
  for (const auto& name : order) {
    result.impls.push_back({name == "pgolf" ? name : peer_name(name), {}});
    if (pgolf_eval) result.eval_impls.push_back({name == "pgolf" ? name : peer_name(name), {}});
  }
  const double tokens = static_cast<double>(options.steps * options.batch_tokens);
  for (int64_t r = 0; r < options.repeats; ++r) {
    for (size_t j = 0; j < order.size(); ++j) {
      const size_t i = (j + static_cast<size_t>(r)) % order.size();  // rotate the order
      const double s =
          order[i] == "pgolf" ? pgolf_step.run(options.steps) : peer.run(order[i], options.steps);
      result.impls[i].tokens_per_s.push_back(tokens / s);
    }
  }
  if (pgolf_eval) {
    result.eval_flops_per_token = pgolf_eval->flops_per_scored_token();
    const double scored =
        static_cast<double>(options.eval_batches * pgolf_eval->scored_tokens_per_batch());
    for (int64_t r = 0; r < options.repeats; ++r) {
      for (size_t j = 0; j < order.size(); ++j) {
        const size_t i = (j + static_cast<size_t>(r)) % order.size();
        const double s = order[i] == "pgolf" ? pgolf_eval->run(options.eval_batches)
                                             : peer.run_eval(order[i], options.eval_batches);
        result.eval_impls[i].tokens_per_s.push_back(scored / s);
      }
    }
  }
  std::filesystem::remove_all(dir);
  return result;
}

std::string format_compare_table(const std::vector<ImplTiming>& impls, double flops_per_token,
                                 double peak_gflops) {
  std::string out = fmt::format("{:<18} {:>11} {:>21} {:>9} {:>7} {:>9}\n", "impl", "tokens/s",
                                "min..max", "GFLOP/s", "MFU", "pgolf/x");
  const double ours = impls.front().median();
  for (const auto& impl : impls) {
    const double med = impl.median();
    const auto [lo, hi] = std::minmax_element(impl.tokens_per_s.begin(), impl.tokens_per_s.end());
    const double gflops = med * flops_per_token / 1e9;
    out += fmt::format("{:<18} {:>11.1f} {:>21} {:>9.2f} {:>6.1f}% {:>8.2f}x\n", impl.name, med,
                       fmt::format("{:.1f}..{:.1f}", *lo, *hi), gflops, 100 * gflops / peak_gflops,
                       ours / med);
  }
  return out;
}

}  // namespace pgolf
