// pgolf's sliding-window evaluation as `pgolf bench --eval` times it: the
// WindowScorer of the final evaluation (eval/sliding.h) on one batch of full
// windows inside a synthetic stream, each scoring its last `stride` tokens,
// which is what all but the first window of a stride-64 evaluation do.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "config/config.h"
#include "eval/windows.h"
#include "model/gpt.h"

namespace pgolf {

class WindowScorer;

class EvalBench {
 public:
  // Seeds with config.train.seed and builds the model as training does;
  // windows are TRAIN_SEQ_LEN long.
  EvalBench(const Config& config, int64_t batch_seqs, int64_t stride, torch::Device device);
  ~EvalBench();

  // Wall seconds to score the batch `batches` times (ends with a device sync).
  double run(int64_t batches);

  GPT& model() { return model_; }
  // The window batch's inputs and targets, (batch_seqs, L): what a peer scores.
  torch::Tensor inputs() const;
  torch::Tensor targets() const;
  int64_t scored_tokens_per_batch() const;
  // Model FLOPs per scored token: a window's forward with the last layer's
  // queries, MLP and the head on its scored positions only
  // (scoring_window_flops), over the stride.
  double flops_per_scored_token() const;

 private:
  Config config_;
  int64_t stride_;
  torch::Device device_;
  GPT model_{nullptr};
  torch::Tensor stream_;
  std::vector<Window> windows_;
  std::unique_ptr<WindowScorer> scorer_;
};

}  // namespace pgolf
