// The loss curve that checks a fast path against the plain one: `steps`
// training steps of a freshly seeded model on one repeated batch of 8
// sequences of 32 tokens (tests/train/test_muon_fast.cpp, tests/kernels).
#pragma once

#include <vector>

#include "model/gpt.h"
#include "optim/optimizers.h"
#include "train/trainer.h"

namespace pgolf::testing {

inline std::vector<double> loss_curve(const ModelConfig& m, const TrainConfig& t, int steps = 50) {
  torch::manual_seed(7);
  GPT model(m);
  Optimizers optimizers(model, t);
  const auto tokens = torch::randint(m.vocab_size, {8 * 32 + 1}, torch::kLong);
  const BatchSource batch = [&] {
    return TokenBatch{tokens.slice(0, 0, -1).view({8, 32}), tokens.slice(0, 1).view({8, 32})};
  };
  std::vector<double> losses;
  for (int step = 0; step < steps; ++step) {
    losses.push_back(train_step(model, optimizers, batch, t, 1, torch::kCPU, 1.0, t.muon_momentum)
                         .item<double>());
  }
  return losses;
}

}  // namespace pgolf::testing
