#include "optim/adamw_step.h"

#include <ATen/ops/_foreach_add.h>
#include <ATen/ops/_foreach_addcdiv.h>
#include <ATen/ops/_foreach_addcmul.h>
#include <ATen/ops/_foreach_div.h>
#include <ATen/ops/_foreach_mul.h>
#include <ATen/ops/_foreach_sqrt.h>

#include <cmath>
#include <memory>
#include <vector>

#include "common/error.h"

namespace pgolf {

using torch::optim::AdamWOptions;
using torch::optim::AdamWParamState;

void adamw_step_foreach(torch::optim::AdamW& optimizer) {
  torch::NoGradGuard no_grad;
  auto& states = optimizer.state();
  for (auto& group : optimizer.param_groups()) {
    const auto& options = static_cast<const AdamWOptions&>(group.options());
    PGOLF_CHECK(!options.amsgrad(), "adamw_step_foreach: AMSGrad is not supported");
    const auto [beta1, beta2] = options.betas();
    std::vector<torch::Tensor> params, grads, exp_avgs, exp_avg_sqs;
    std::vector<c10::Scalar> step_sizes, bias2_roots;
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      PGOLF_CHECK(!p.grad().is_sparse(), "adamw_step_foreach: sparse gradients are not supported");
      auto& slot = states[p.unsafeGetTensorImpl()];
      if (!slot) {
        auto state = std::make_unique<AdamWParamState>();
        state->step(0);
        state->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        state->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        slot = std::move(state);
      }
      auto& state = static_cast<AdamWParamState&>(*slot);
      state.step(state.step() + 1);
      const double bias1 = 1 - std::pow(beta1, state.step());
      const double bias2 = 1 - std::pow(beta2, state.step());
      params.push_back(p);
      grads.push_back(p.grad());
      exp_avgs.push_back(state.exp_avg());
      exp_avg_sqs.push_back(state.exp_avg_sq());
      step_sizes.emplace_back(-options.lr() / bias1);
      bias2_roots.emplace_back(std::sqrt(bias2));
    }
    if (params.empty()) continue;
    if (options.weight_decay() != 0)
      at::_foreach_mul_(params, 1 - options.lr() * options.weight_decay());
    at::_foreach_mul_(exp_avgs, beta1);
    at::_foreach_add_(exp_avgs, grads, 1 - beta1);
    at::_foreach_mul_(exp_avg_sqs, beta2);
    at::_foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2);
    auto denoms = at::_foreach_sqrt(exp_avg_sqs);
    at::_foreach_div_(denoms, bias2_roots);
    at::_foreach_add_(denoms, options.eps());
    at::_foreach_addcdiv_(params, exp_avgs, denoms, step_sizes);
  }
}

}  // namespace pgolf
