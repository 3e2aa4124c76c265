#include "train/averaging.h"

#include <ATen/ops/_foreach_add.h>
#include <ATen/ops/_foreach_mul.h>
#include <fmt/format.h>

#include "common/error.h"

namespace pgolf {

Ema::Ema(const std::vector<torch::Tensor>& params, double decay) : decay_(decay) {
  torch::NoGradGuard no_grad;
  for (const auto& p : params) shadow_.push_back(p.detach().to(torch::kFloat).clone());
}

void Ema::update(const std::vector<torch::Tensor>& params) {
  torch::NoGradGuard no_grad;
  // shadow = decay * shadow + (1 - decay) * p, in two multi-tensor kernels.
  std::vector<torch::Tensor> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p.detach().to(torch::kFloat));
  at::_foreach_mul_(shadow_, decay_);
  at::_foreach_add_(shadow_, values, 1.0 - decay_);
}

void Ema::apply_to(const std::vector<torch::Tensor>& params) const {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params.size(); ++i) params[i].copy_(shadow_[i]);
}

void Swa::collect(const std::vector<torch::Tensor>& params) {
  torch::NoGradGuard no_grad;
  if (count_ == 0) {
    sum_.clear();
    for (const auto& p : params) sum_.push_back(p.detach().clone());
  } else {
    PGOLF_CHECK(sum_.size() == params.size(), "SWA: parameter count changed");
    std::vector<torch::Tensor> values;
    values.reserve(params.size());
    for (const auto& p : params) values.push_back(p.detach());
    at::_foreach_add_(sum_, values);
  }
  ++count_;
}

void Swa::apply_to(const std::vector<torch::Tensor>& params) const {
  if (count_ <= 1) return;
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params.size(); ++i) {
    params[i].copy_(sum_[i] / static_cast<double>(count_));
  }
}

WeightAverages::WeightAverages(const TrainConfig& config, const std::vector<torch::Tensor>& params)
    : params_(params), swa_apply_(config.swa_apply) {
  if (config.ema_enabled) ema_ = std::make_unique<Ema>(params, config.ema_decay);
  if (config.swa_enabled) swa_ = std::make_unique<Swa>(config.swa_every, config.swa_start_frac);
}

bool WeightAverages::after_step(int64_t step, double lr_scale) {
  if (ema_) ema_->update(params_);
  if (!swa_ || !swa_->due(step, lr_scale)) return false;
  swa_->collect(params_);
  return swa_->count() == 1;
}

std::string WeightAverages::apply() {
  if (ema_) {
    ema_->apply_to(params_);
    return "ema";
  }
  if (swa_ && swa_apply_ && swa_->count() > 1) {
    swa_->apply_to(params_);
    return fmt::format("swa({} checkpoints)", swa_->count());
  }
  return "";
}

}  // namespace pgolf
