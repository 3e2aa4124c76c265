// pgolf bench: training throughput and model FLOP utilisation per preset,
// against the matrix-multiply peak measured on this machine in the same run.
//
// A step is the real training step (forward, backward, Muon + Adam) on
// synthetic tokens (perf/step_bench.h); the median of the timed steps is
// reported. The sliding-window evaluation is timed too: EVAL_BATCH_SEQS
// windows scoring EVAL_STRIDE tokens each (perf/eval_bench.h), in scored
// tokens/s. --compare PATH_TO_train_gpt.py also times the official script's
// step and window forward in PyTorch, eager and compiled, interleaved with
// pgolf's (perf/compare.h), and prints tables per preset with the ratios.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <fstream>
#include <memory>
#include <sstream>

#include "cli/commands.h"
#include "common/device.h"
#include "common/error.h"
#include "common/format.h"
#include "config/options.h"
#include "config/presets.h"
#include "kernels/fused.h"
#include "model/weights.h"
#include "perf/compare.h"
#include "perf/eval_bench.h"
#include "perf/gemm_peak.h"
#include "perf/op_profile.h"
#include "perf/step_bench.h"
#include "pipeline/run_context.h"

namespace pgolf {
namespace {

struct BenchArgs {
  std::string presets = "baseline,cpu";
  int64_t steps = 5;
  int64_t warmup = 2;
  int64_t batch_tokens = 8192;
  int64_t gemm_size = 2048;
  std::string compare;  // the official train_gpt.py
  std::string compare_modes = "eager,compiled";
  int64_t repeats = 5;
  int64_t profile_top = 0;   // > 0: also print the top ops of --steps profiled steps
  int64_t eval_batches = 1;  // window batches per timed evaluation (0: no evaluation timing)
};

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return in ? fmt::format("{} {} {}", one, five, fifteen) : "n/a";
}

// A preset, with the settings given explicitly (flags or environment) on top:
// `pgolf bench --presets cpu --num-layers 2` benches a 2-layer `cpu` model.
Config preset_with_overrides(const std::string& name, const Config& resolved,
                             const ConfigFlags& flags) {
  Config config = preset(name);
  Config source = resolved;
  auto dst = config_options(config);
  const auto src = config_options(source);
  for (size_t i = 0; i < dst.size(); ++i) {
    if (dst[i].group != "runtime" && flags.explicitly_set(dst[i].key)) dst[i].set(src[i].get());
  }
  config.runtime = resolved.runtime;
  config.validate();
  return config;
}

struct PresetBench {
  int64_t params = 0;
  double step_s = 0;
  double tokens_per_s = 0;
  double gflops = 0;  // achieved model GFLOP/s
  double mfu = 0;
  double eval_tokens_per_s = 0;  // scored tokens/s of the sliding evaluation
  double eval_mfu = 0;
};

// "--steps: must be at least 1, got 0" (CLI11's number checks print a range of doubles).
CLI::Validator at_least(int64_t min) {
  return CLI::Validator(
      [min](std::string& text) {
        int64_t value = 0;
        if (!CLI::detail::lexical_cast(text, value)) return "not an integer: " + text;
        return value >= min ? std::string()
                            : fmt::format("must be at least {}, got {}", min, value);
      },
      fmt::format("INT>={}", min));
}

template <typename Run>
double median_seconds(int64_t repeats, Run run) {
  std::vector<double> times;
  for (int64_t i = 0; i < repeats; ++i) times.push_back(run());
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

int64_t eval_stride_of(const Config& config) {
  const int64_t L = config.train.train_seq_len;
  return config.eval.eval_stride > 0 ? std::min(config.eval.eval_stride, L) : L;
}

PresetBench bench_preset(const Config& config, const BenchArgs& args, torch::Device device,
                         double peak) {
  StepBench bench(config, args.batch_tokens, device);
  bench.run(args.warmup);
  PresetBench r;
  r.params = parameter_count(bench.model());
  r.step_s = median_seconds(args.steps, [&] { return bench.run(1); });
  r.tokens_per_s = static_cast<double>(args.batch_tokens) / r.step_s;
  r.gflops = r.tokens_per_s * bench.flops_per_token() / 1e9;
  r.mfu = r.gflops / peak;
  if (args.eval_batches > 0) {
    EvalBench eval(config, config.eval.eval_batch_seqs, eval_stride_of(config), device);
    eval.run(1);
    const double s = median_seconds(args.steps, [&] { return eval.run(args.eval_batches); });
    r.eval_tokens_per_s =
        static_cast<double>(args.eval_batches * eval.scored_tokens_per_batch()) / s;
    r.eval_mfu = r.eval_tokens_per_s * eval.flops_per_scored_token() / 1e9 / peak;
  }
  return r;
}

// Where the preset's step spends its time, op by op (a fresh model, warmed up).
void print_profile(const Config& config, const BenchArgs& args, torch::Device device) {
  StepBench bench(config, args.batch_tokens, device);
  bench.run(args.warmup);
  const auto costs = profile_ops([&] { bench.run(args.steps); });
  fmt::print("  {} steps profiled:\n{}", args.steps,
             format_op_profile(costs, static_cast<size_t>(args.profile_top)));
}

void print_preset_table(const BenchArgs& args, const Config& base, torch::Device device,
                        double peak, const ConfigFlags& flags) {
  fmt::print("{:<10} {:>12} {:>8} {:>10} {:>12} {:>12} {:>8} {:>13} {:>9}\n", "preset", "params",
             "seq_len", "step_ms", "tokens/s", "GFLOP/s", "MFU", "eval tok/s", "eval MFU");
  for (const auto& name : split_list(args.presets)) {
    const Config config = preset_with_overrides(name, base, flags);
    const auto r = bench_preset(config, args, device, peak);
    fmt::print("{:<10} {:>12} {:>8} {:>10.1f} {:>12.0f} {:>12.1f} {:>7.1f}% {:>13.0f} {:>8.1f}%\n",
               name, r.params, config.train.train_seq_len, 1000 * r.step_s, r.tokens_per_s,
               r.gflops, 100 * r.mfu, r.eval_tokens_per_s, 100 * r.eval_mfu);
    if (args.profile_top > 0) print_profile(config, args, device);
  }
}

void print_comparisons(const BenchArgs& args, const Config& base, torch::Device device, double peak,
                       const ConfigFlags& flags) {
  CompareOptions options;
  options.batch_tokens = args.batch_tokens;
  options.steps = args.steps;
  options.warmup = args.warmup;
  options.repeats = args.repeats;
  options.threads = at::get_num_threads();
  options.eval_batches = args.eval_batches;
  options.peer.script = args.compare;
  options.peer.harness = find_peer_harness(base.tools);
  options.peer.python = base.tools.python;
  options.peer.modes = split_list(args.compare_modes);
  for (const auto& m : options.peer.modes) {
    PGOLF_CHECK(m == "eager" || m == "compiled", "--compare-modes: '{}' (eager | compiled)", m);
  }
  for (const auto& name : split_list(args.presets)) {
    const Config config = preset_with_overrides(name, base, flags);
    fmt::print("\npreset {}: seq_len {}, {} tokens/step, {} steps x {} interleaved repeats\n", name,
               config.train.train_seq_len, args.batch_tokens, args.steps, args.repeats);
    std::fflush(stdout);
    options.eval_batch_seqs = args.eval_batches > 0 ? config.eval.eval_batch_seqs : 0;
    options.eval_stride = eval_stride_of(config);
    const auto r = compare_with_peer(config, options, device);
    const auto& h = r.peer_header;
    fmt::print("params {} (peer {}), peer: torch {} threads {} ns_dtype {} compile {:.1f} s\n",
               r.params, h.value("params", 0), h.value("torch", "?"), h.value("threads", 0),
               h.value("ns_dtype", "?"), h.value("compile_s", 0.0));
    // On CUDA: which GPU, and whether #1406's FlashAttention 3 call ran or
    // the script's own SDPA branch stood in for it.
    if (h.contains("gpu")) {
      fmt::print("peer on {}: attention {}\n", h.value("gpu", "?"), h.value("attention", "?"));
    }
    fmt::print("training step:\n{}", format_compare_table(r.impls, r.flops_per_token, peak));
    if (!r.eval_impls.empty()) {
      fmt::print("sliding-window evaluation ({} windows of {}, stride {}; scored tokens/s):\n{}",
                 options.eval_batch_seqs, config.train.train_seq_len, options.eval_stride,
                 format_compare_table(r.eval_impls, r.eval_flops_per_token, peak));
    }
    fmt::print("load average after: {}\n", load_average());
  }
}

}  // namespace

Command add_bench_command(CLI::App& app) {
  auto* sub = app.add_subcommand("bench", "training tokens/s and MFU per preset");
  auto args = std::make_shared<BenchArgs>();
  auto flags = std::make_shared<ConfigFlags>(*sub, "cpu");
  sub->add_option("--presets", args->presets, "comma-separated presets")->capture_default_str();
  sub->add_option("--steps", args->steps, "timed steps per preset (per repeat with --compare)")
      ->check(at_least(1))
      ->capture_default_str();
  sub->add_option("--warmup", args->warmup, "untimed steps first")
      ->check(at_least(0))
      ->capture_default_str();
  sub->add_option("--batch-tokens", args->batch_tokens, "tokens per step")
      ->check(at_least(1))
      ->capture_default_str();
  sub->add_option("--gemm-size", args->gemm_size, "matmul size for the peak")
      ->check(at_least(1))
      ->capture_default_str();
  sub->add_option("--compare", args->compare,
                  "the official train_gpt.py (#1406's for a pr1406 preset): also time its step "
                  "in PyTorch, eager and compiled (python: $PGOLF_PYTHON or python3; harness: "
                  "bench/peer_step.py)");
  sub->add_option("--compare-modes", args->compare_modes, "peer modes: eager,compiled")
      ->capture_default_str();
  sub->add_option("--repeats", args->repeats, "interleaved repeats with --compare")
      ->check(at_least(1))
      ->capture_default_str();
  sub->add_option("--eval-batches", args->eval_batches,
                  "window batches (EVAL_BATCH_SEQS windows, EVAL_STRIDE scored each) per timed "
                  "evaluation; 0: do not time the evaluation")
      ->check(at_least(0))
      ->capture_default_str();
  sub->add_option("--profile", args->profile_top,
                  "also profile --steps steps per preset and print the N costliest ops")
      ->check(at_least(0));
  return {sub, [args, flags] {
            // Runtime settings (device, dtype, threads) come from the flags;
            // the model and recipe from each preset, plus any explicit flag.
            const Config base = flags->resolve();
            const torch::Device device = RunContext::open(base).device;
            const auto dtype = resolve_compute_dtype(base.runtime.dtype, device);
            const double peak = gemm_peak_gflops(args->gemm_size, dtype, device);
            fmt::print(
                "device:{} threads:{} compute_dtype:{} fused_cpu_kernels:{} load_average:{}\n",
                device.str(), at::get_num_threads(), compute_dtype_name(dtype),
                kernels::fused_enabled() ? "on" : "off", load_average());
            fmt::print("gemm_peak {}x{} {}: {:.1f} GFLOP/s\n", args->gemm_size, args->gemm_size,
                       compute_dtype_name(dtype), peak);
            if (args->compare.empty()) {
              print_preset_table(*args, base, device, peak, *flags);
            } else {
              print_comparisons(*args, base, device, peak, *flags);
            }
            return 0;
          }};
}

}  // namespace pgolf
