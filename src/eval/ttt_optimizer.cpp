#include "eval/ttt_optimizer.h"

#include <cmath>

#include "common/error.h"
#include "dist/process_group.h"
#include "optim/grad_clip.h"
#include "optim/muon.h"

namespace pgolf {

TttOptimizer::TttOptimizer(std::vector<TrainableParam> params, TttUpdateOptions options)
    : params_(std::move(params)),
      options_(options),
      first_(params_.size()),
      second_(params_.size()),
      steps_(params_.size(), 0) {
  PGOLF_CHECK(options_.rule != TttMode::kNone, "TTT update rule: none is not a rule");
}

std::vector<torch::Tensor> TttOptimizer::tensors() const {
  std::vector<torch::Tensor> out;
  out.reserve(params_.size());
  for (const auto& p : params_) out.push_back(p.value);
  return out;
}

void TttOptimizer::zero_grad() {
  for (auto& p : params_) {
    auto& g = p.value.mutable_grad();
    if (g.defined()) g = torch::Tensor();
  }
}

void TttOptimizer::step(double lr) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& p = params_[i].value;
    const auto& g = p.grad();
    if (!g.defined()) continue;
    const auto& scale = params_[i].lr_scale;
    auto scaled = [&](const torch::Tensor& update) {
      return scale.defined() ? update * scale : update;
    };
    ++steps_[i];
    if (options_.rule == TttMode::kSgd) {
      if (!first_[i].defined()) {
        first_[i] = g.detach().clone();
      } else {
        first_[i].mul_(options_.momentum).add_(g);
      }
      p.sub_(scaled(first_[i]), lr);
    } else if (options_.rule == TttMode::kAdamW) {
      if (!first_[i].defined()) {
        first_[i] = torch::zeros_like(p);
        second_[i] = torch::zeros_like(p);
      }
      const double b1 = options_.beta1, b2 = options_.beta2;
      first_[i].mul_(b1).add_(g, 1 - b1);
      second_[i].mul_(b2).addcmul_(g, g, 1 - b2);
      const double t = static_cast<double>(steps_[i]);
      const double bias1 = 1 - std::pow(b1, t), bias2 = 1 - std::pow(b2, t);
      auto denom = second_[i].sqrt().div_(std::sqrt(bias2)).add_(options_.eps);
      p.sub_(scaled(first_[i] / denom), lr / bias1);
    } else if (g.dim() >= 2) {
      auto update = newton_schulz5(g, options_.ns_steps, options_.ns_dtype).to(p.scalar_type());
      p.sub_(scaled(update), lr);
    } else {
      p.sub_(scaled(g), lr);
    }
  }
}

void TttOptimizer::averaged_step(double lr, ProcessGroup* group, double clip) {
  auto params = tensors();
  if (group && group->active()) {
    std::vector<torch::Tensor> grads;
    for (auto& p : params) {
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
      grads.push_back(p.grad());
    }
    group->all_reduce_mean(grads);
  }
  if (clip > 0) clip_grad_norm_no_sync(params, clip);
  step(lr);
}

}  // namespace pgolf
