// Weight averaging over training (spec model-and-training §4.10-4.11):
//   EMA  an fp32 shadow e of every parameter, e <- d e + (1 - d) w after every
//        step, initialised from the weights training starts from (#1406
//        always, d = 0.997; #562 optionally);
//   SWA  after step k (counted after the increment), if the LR multiplier s
//        used for that step is below SWA_START_FRAC and k % SWA_EVERY == 0,
//        add the weights to a running sum (#461/#456/#562 export the mean).
// Both keep their state on the parameters' device; apply_to() copies the
// average into the model (cast to each parameter's dtype).
#pragma once

#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

#include "config/config.h"

namespace pgolf {

class Ema {
 public:
  Ema(const std::vector<torch::Tensor>& params, double decay);
  void update(const std::vector<torch::Tensor>& params);
  void apply_to(const std::vector<torch::Tensor>& params) const;
  std::vector<torch::Tensor>& shadow() { return shadow_; }

 private:
  std::vector<torch::Tensor> shadow_;
  double decay_;
};

class Swa {
 public:
  Swa(int64_t every, double start_frac) : every_(every), start_frac_(start_frac) {}
  // Whether step `step` (already incremented) with multiplier `lr_scale` collects.
  bool due(int64_t step, double lr_scale) const {
    return lr_scale < start_frac_ && step % every_ == 0;
  }
  void collect(const std::vector<torch::Tensor>& params);
  int64_t count() const { return count_; }
  // The mean of the collected weights; a no-op unless more than one was collected.
  void apply_to(const std::vector<torch::Tensor>& params) const;
  std::vector<torch::Tensor>& sum() { return sum_; }
  void set_count(int64_t count) { count_ = count; }

 private:
  int64_t every_;
  double start_frac_;
  int64_t count_ = 0;
  std::vector<torch::Tensor> sum_;
};

// The averages a recipe keeps (EMA_ENABLED, SWA_ENABLED), updated after each
// step, and the one the entry exports once training ends.
class WeightAverages {
 public:
  WeightAverages(const TrainConfig& config, const std::vector<torch::Tensor>& params);
  // After optimizer step `step` (counted after the increment) taken at LR
  // multiplier `lr_scale`; true when SWA collected its first checkpoint.
  bool after_step(int64_t step, double lr_scale);
  // The exported weights into the model: the EMA (#1406), else the SWA mean
  // when SWA_APPLY and more than one checkpoint (#461/#456/#562). Returns what
  // was applied ("ema", "swa(N checkpoints)") or "" for the last weights.
  std::string apply();
  Ema* ema() { return ema_.get(); }
  Swa* swa() { return swa_.get(); }

 private:
  std::vector<torch::Tensor> params_;
  bool swa_apply_;
  std::unique_ptr<Ema> ema_;
  std::unique_ptr<Swa> swa_;
};

}  // namespace pgolf
