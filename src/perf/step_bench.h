// pgolf's training step as `pgolf bench` times it: the real train_step
// (forward, backward, Muon + Adam) of a preset's model on fixed synthetic
// tokens, lr scale 1, one micro-batch per step: rows of TRAIN_SEQ_LEN, or
// with TRAIN_LOADER=documents one packed row as training feeds it. The model
// is as built (a looped preset's loop on: the step bench has no schedule).
#pragma once

#include <cstdint>

#include "config/config.h"
#include "model/gpt.h"
#include "optim/optimizers.h"

namespace pgolf {

class StepBench {
 public:
  // Seeds with config.train.seed and builds the model as training does;
  // batch_tokens must be a multiple of TRAIN_SEQ_LEN.
  StepBench(const Config& config, int64_t batch_tokens, torch::Device device);

  // Wall seconds for `steps` steps, ending with a device sync.
  double run(int64_t steps);

  GPT& model() { return model_; }
  int64_t batch_tokens() const { return tokens_.numel() - 1; }
  // The fixed token block the steps read: batch_tokens() + 1 tokens.
  const torch::Tensor& tokens() const { return tokens_; }
  // Model FLOPs of one trained token (model/flops.h).
  double flops_per_token() const;
  // The mean loss of the last step run (a host sync).
  double last_loss() const { return last_loss_.defined() ? last_loss_.item<double>() : 0.0; }

 private:
  Config config_;
  torch::Device device_;
  GPT model_{nullptr};
  std::unique_ptr<Optimizers> optimizers_;
  torch::Tensor tokens_;
  torch::Tensor last_loss_;
};

}  // namespace pgolf
