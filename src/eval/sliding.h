// Sliding-window evaluation (spec quantize-eval-ttt §2): every target is
// predicted with up to L-stride tokens of context instead of the 0..L-1 of the
// plain split, which is what the entries report as their headline val_bpb.
//
// Windows are scored in batches of `batch_seqs` rows of L tokens (a short
// window is padded with token 0 after its end; causal attention keeps the
// padding out of the scored positions); per window, the float64 sums of the
// NLL and of the target bytes over its scored positions, as the references.
// With a byte sidecar in the luts, a target's bytes are its sidecar entry.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "data/tokenizer.h"
#include "eval/val_bpb.h"
#include "eval/windows.h"
#include "model/gpt.h"

namespace pgolf {

class ProcessGroup;

// Scores windows of one validation stream with one model, in eval mode and
// inference mode (the weights cannot change while a window is scored).
class WindowScorer {
 public:
  WindowScorer(GPT model, torch::Tensor stream, const ByteLuts& luts, int64_t window_len,
               int64_t batch_seqs);

  // Adds the windows' sums to `total` (and to per_window[i] for window i,
  // when given); `on_batch(done, total)` after each batch.
  void score(std::span<const Window> windows, ValResult& total,
             std::vector<ValResult>* per_window = nullptr,
             const std::function<void(int64_t, int64_t)>& on_batch = {});

 private:
  GPT model_;
  torch::Tensor stream_;   // CPU int64
  ByteLuts luts_;          // on the model's device
  torch::Tensor sidecar_;  // luts.sidecar on the CPU (undefined without one)
  int64_t window_len_;
  int64_t batch_seqs_;
  torch::Device device_;
};

struct SlidingOptions {
  int64_t window_len = 1024;
  int64_t stride = 64;
  int64_t batch_seqs = 32;
  bool reference_tail = false;    // headline = the references' over-counted tail
  ProcessGroup* group = nullptr;  // windows split across ranks, sums all-reduced
  std::function<void(int64_t, int64_t)> on_batch;
};

struct SlidingResult {
  ValResult result;     // the headline: exact, or reference with reference_tail
  ValResult exact;      // every target once
  ValResult reference;  // the references' plan (only with reference_tail)
  int64_t windows = 0;  // windows scored (all ranks)
};

SlidingResult evaluate_sliding(GPT& model, const torch::Tensor& stream, const ByteLuts& luts,
                               const SlidingOptions& options);

}  // namespace pgolf
