// `pgolf bench --compare`: pgolf's training step against the official
// script's in PyTorch (eager and torch.compile, perf/peer.h), same model,
// same initial weights, same tokens per step, same threads; and optionally
// the sliding-window evaluation's scoring of a window batch (perf/eval_bench.h
// against the script's forward without gradients).
//
// Noise: this is measured on machines that others share, so the repeats are
// interleaved (pgolf, eager, compiled, then the order rotates) and each
// implementation's figure is the median of its repeats: load that comes and
// goes hits all three alike, and the ratios stay meaningful.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "config/config.h"
#include "perf/peer.h"

namespace pgolf {

struct CompareOptions {
  int64_t batch_tokens = 8192;
  int64_t steps = 3;    // steps per timed repeat
  int64_t warmup = 2;   // untimed steps first (each implementation)
  int64_t repeats = 5;  // interleaved repeats per implementation
  int threads = 1;
  // > 0: also the sliding-window evaluation, a batch of that many windows of
  // TRAIN_SEQ_LEN scoring `eval_stride` tokens each, `eval_batches` per repeat.
  int64_t eval_batch_seqs = 0;
  int64_t eval_stride = 64;
  int64_t eval_batches = 1;
  PeerSetup peer;  // script, harness, python, modes; weights and log are set here
};

struct ImplTiming {
  std::string name;                  // "pgolf", "pytorch eager", "pytorch compiled"
  std::vector<double> tokens_per_s;  // one per repeat, in order
  double median() const;
};

struct CompareResult {
  std::vector<ImplTiming> impls;  // pgolf first; trained tokens/s
  nlohmann::json peer_header;     // the harness's ready line
  double flops_per_token = 0;
  int64_t params = 0;
  std::vector<ImplTiming> eval_impls;  // with eval_batch_seqs: scored tokens/s
  double eval_flops_per_token = 0;     // per scored token
};

CompareResult compare_with_peer(const Config& config, const CompareOptions& options,
                                torch::Device device);

// The table: tokens/s (median, min..max), GFLOP/s, MFU against
// `peak_gflops`, and pgolf's speed-up over each peer mode; `impls` is
// result.impls (training) or result.eval_impls (evaluation).
std::string format_compare_table(const std::vector<ImplTiming>& impls, double flops_per_token,
                                 double peak_gflops);

}  // namespace pgolf
