// pgolf bench: training throughput and model FLOP utilisation per preset,
// against the matrix-multiply peak measured on this machine in the same run.
//
// A step is the real training step (forward, backward, Muon + Adam) on
// synthetic tokens; the median of the timed steps is reported.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <memory>
#include <sstream>

#include "cli/commands.h"
#include "common/device.h"
#include "common/error.h"
#include "config/options.h"
#include "config/presets.h"
#include "model/flops.h"
#include "model/weights.h"
#include "train/trainer.h"

namespace pgolf {
namespace {

using Clock = std::chrono::steady_clock;

struct BenchArgs {
  std::string presets = "baseline,cpu";
  int64_t steps = 5;
  int64_t warmup = 2;
  int64_t batch_tokens = 8192;
  int64_t gemm_size = 2048;
};

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Best-of-several n x n matmul rate, GFLOP/s.
double gemm_peak_gflops(int64_t n, torch::ScalarType dtype, torch::Device device) {
  auto opts = torch::TensorOptions().dtype(dtype).device(device);
  auto a = torch::randn({n, n}, opts), b = torch::randn({n, n}, opts),
       c = torch::empty({n, n}, opts);
  torch::mm_out(c, a, b);  // warm-up
  synchronize(device);
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const int inner = 3;
    const auto t0 = Clock::now();
    for (int i = 0; i < inner; ++i) torch::mm_out(c, a, b);
    synchronize(device);
    best = std::max(best, inner * 2.0 * n * n * n / seconds_since(t0) / 1e9);
  }
  return best;
}

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

struct PresetBench {
  int64_t params = 0;
  double step_s = 0;
  double tokens_per_s = 0;
  double gflops = 0;  // achieved model GFLOP/s
  double mfu = 0;
};

PresetBench bench_preset(Config config, const BenchArgs& args, torch::Device device, double peak) {
  const int64_t T = config.train.train_seq_len;
  PGOLF_CHECK(args.batch_tokens % T == 0,
              "--batch-tokens={} must be a multiple of the preset's "
              "TRAIN_SEQ_LEN={}",
              args.batch_tokens, T);
  torch::manual_seed(static_cast<uint64_t>(config.train.seed));
  GPT model(config.model);
  model->to(device);
  model->set_compute_dtype(parse_compute_dtype(config.runtime.dtype));
  Optimizers optimizers(model, config.train);
  const auto tokens = torch::randint(config.model.vocab_size, {args.batch_tokens + 1},
                                     torch::TensorOptions().dtype(torch::kLong));
  const BatchSource batch = [&] {
    return TokenBatch{tokens.slice(0, 0, -1).view({-1, T}), tokens.slice(0, 1).view({-1, T})};
  };
  std::vector<double> times;
  for (int64_t i = 0; i < args.warmup + args.steps; ++i) {
    const auto t0 = Clock::now();
    train_step(model, optimizers, batch, config.train, 1, device, 1.0, config.train.muon_momentum)
        .item<double>();
    synchronize(device);
    if (i >= args.warmup) times.push_back(seconds_since(t0));
  }
  PresetBench r;
  r.params = parameter_count(model);
  r.step_s = median(times);
  r.tokens_per_s = static_cast<double>(args.batch_tokens) / r.step_s;
  r.gflops = r.tokens_per_s * training_flops_per_token(config.model, T) / 1e9;
  r.mfu = r.gflops / peak;
  return r;
}

}  // namespace

Command add_bench_command(CLI::App& app) {
  auto* sub = app.add_subcommand("bench", "training tokens/s and MFU per preset");
  auto args = std::make_shared<BenchArgs>();
  auto flags = std::make_shared<ConfigFlags>(*sub, "cpu");
  sub->add_option("--presets", args->presets, "comma-separated presets")->capture_default_str();
  sub->add_option("--steps", args->steps, "timed steps per preset")->capture_default_str();
  sub->add_option("--warmup", args->warmup, "untimed steps first")->capture_default_str();
  sub->add_option("--batch-tokens", args->batch_tokens, "tokens per step")->capture_default_str();
  sub->add_option("--gemm-size", args->gemm_size, "matmul size for the peak")
      ->capture_default_str();
  return {sub, [args, flags] {
            // Runtime settings (device, dtype, threads) come from the flags;
            // the model and recipe from each preset.
            const Config base = flags->resolve();
            const auto device = resolve_device(base.runtime.device);
            configure_threads(base.runtime.threads);
            const auto dtype = parse_compute_dtype(base.runtime.dtype);
            const double peak = gemm_peak_gflops(args->gemm_size, dtype, device);
            fmt::print("device:{} threads:{} compute_dtype:{}\n", device.str(),
                       at::get_num_threads(), base.runtime.dtype);
            fmt::print("gemm_peak {}x{} {}: {:.1f} GFLOP/s\n", args->gemm_size, args->gemm_size,
                       base.runtime.dtype, peak);
            fmt::print("{:<10} {:>12} {:>8} {:>10} {:>12} {:>12} {:>8}\n", "preset", "params",
                       "seq_len", "step_ms", "tokens/s", "GFLOP/s", "MFU");
            for (const auto& name : split_commas(args->presets)) {
              Config config = preset(name);
              config.runtime = base.runtime;
              const auto r = bench_preset(config, *args, device, peak);
              fmt::print("{:<10} {:>12} {:>8} {:>10.1f} {:>12.0f} {:>12.1f} {:>7.1f}%\n", name,
                         r.params, config.train.train_seq_len, 1000 * r.step_s, r.tokens_per_s,
                         r.gflops, 100 * r.mfu);
            }
            return 0;
          }};
}

}  // namespace pgolf
