// The multi-tensor AdamW step equals LibTorch's AdamW::step bit for bit, state
// included, so it can replace it in training (and checkpoints stay readable).
#include <gtest/gtest.h>

#include "optim/adamw_step.h"

namespace pgolf {
namespace {

std::vector<torch::Tensor> make_params(uint64_t seed) {
  torch::manual_seed(static_cast<int64_t>(seed));
  return {torch::randn({7, 5}).requires_grad_(), torch::randn({3}).requires_grad_(),
          torch::randn({2, 3, 4}).requires_grad_(), torch::randn({}).requires_grad_()};
}

void set_grads(std::vector<torch::Tensor>& params, int step) {
  torch::manual_seed(100 + step);
  for (size_t i = 0; i < params.size(); ++i) {
    // The third tensor has no gradient at step 1: skipped, its state lags.
    if (i == 2 && step == 1) {
      params[i].mutable_grad() = torch::Tensor();
      continue;
    }
    params[i].mutable_grad() = torch::randn(params[i].sizes()) * (1.0 + step);
  }
}

TEST(AdamwStepForeach, BitIdenticalToLibTorchsStep) {
  auto options = torch::optim::AdamWOptions(0.03).betas({0.9, 0.99}).eps(1e-8).weight_decay(0.04);
  auto plain_params = make_params(1), foreach_params = make_params(1);
  torch::optim::AdamW plain(plain_params, options), fast(foreach_params, options);
  for (int step = 0; step < 4; ++step) {
    set_grads(plain_params, step);
    set_grads(foreach_params, step);
    // A changed LR between steps (the schedule) is honoured.
    for (auto* opt : {&plain, &fast}) {
      static_cast<torch::optim::AdamWOptions&>(opt->param_groups()[0].options())
          .lr(0.03 / (1 + step));
    }
    plain.step();
    adamw_step_foreach(fast);
    for (size_t i = 0; i < plain_params.size(); ++i) {
      ASSERT_TRUE(torch::equal(plain_params[i], foreach_params[i]))
          << "step " << step << " param " << i;
      const auto& a = static_cast<torch::optim::AdamWParamState&>(
          *plain.state().at(plain_params[i].unsafeGetTensorImpl()));
      const auto& b = static_cast<torch::optim::AdamWParamState&>(
          *fast.state().at(foreach_params[i].unsafeGetTensorImpl()));
      EXPECT_EQ(a.step(), b.step());
      EXPECT_TRUE(torch::equal(a.exp_avg(), b.exp_avg()));
      EXPECT_TRUE(torch::equal(a.exp_avg_sq(), b.exp_avg_sq()));
    }
  }
}

TEST(AdamwStepForeach, RefusesAmsgrad) {
  auto params = make_params(2);
  set_grads(params, 0);
  torch::optim::AdamW opt(params, torch::optim::AdamWOptions(0.01).amsgrad(true));
  EXPECT_THROW(adamw_step_foreach(opt), std::exception);
}

}  // namespace
}  // namespace pgolf
