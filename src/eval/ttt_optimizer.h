// The updates of test-time training (spec quantize-eval-ttt §5.2-5.7), one
// class for the three rules so every TTT mode runs the same loop:
//
//   sgd    (#461)  b <- mu b + g (b = g at the first step);  p <- p - lr s b
//   adamw  (#456, #562, #1406 dTTT; betas 0.9/0.999, eps 1e-8, no decay)
//          m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2;  t <- t+1
//          p <- p - lr s / (1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
//   muon   (#1406 03-28) p <- p - lr s NS_k(g) for matrices (a bank is a batch
//          of matrices), p <- p - lr s g otherwise; no momentum, no shape factor
//
// where s is the parameter's LR scale (ttt_params.h). These are written out
// rather than taken from torch::optim because s can differ per bank slice
// (a tensor, not a group scalar); the arithmetic is torch.optim's (SGD with
// dampening 0, AdamW), checked against hand-computed updates in the tests.
#pragma once

#include <torch/types.h>

#include <string>
#include <vector>

#include "config/enums.h"
#include "eval/ttt_params.h"

namespace pgolf {

class ProcessGroup;

struct TttUpdateOptions {
  TttMode rule = TttMode::kSgd;  // sgd | adamw | muon
  double momentum = 0.9;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  int64_t ns_steps = 3;
  torch::ScalarType ns_dtype = torch::kBFloat16;
};

class TttOptimizer {
 public:
  TttOptimizer(std::vector<TrainableParam> params, TttUpdateOptions options);

  // Updates every parameter that has a gradient, at learning rate `lr`.
  void step(double lr);
  // The data-parallel step: averages the gradients over the group's ranks (a
  // parameter without one counts as zeros), clips their global norm to `clip`
  // (0: off), then step(lr).
  void averaged_step(double lr, ProcessGroup* group, double clip);
  void zero_grad();
  // The trainable tensors (for clipping and all-reduce).
  std::vector<torch::Tensor> tensors() const;
  const std::vector<TrainableParam>& params() const { return params_; }
  // For schedules that move each parameter's LR differently (#1406's dTTT
  // cosine towards one absolute floor).
  std::vector<TrainableParam>& mutable_params() { return params_; }

 private:
  std::vector<TrainableParam> params_;
  TttUpdateOptions options_;
  std::vector<torch::Tensor> first_, second_;  // momentum / Adam moments
  std::vector<int64_t> steps_;
};

}  // namespace pgolf
