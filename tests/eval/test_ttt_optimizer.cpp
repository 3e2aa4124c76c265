// The TTT update rules against hand-computed updates and against
// torch.optim's own SGD and AdamW (spec quantize-eval-ttt §5.2-5.4).
#include <gtest/gtest.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>

#include <cmath>

#include "eval/ttt_optimizer.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

TrainableParam param(torch::Tensor value, torch::Tensor scale = {}) {
  value.set_requires_grad(true);
  return {"p", value, scale};
}

void set_grad(TttOptimizer& opt, size_t i, const torch::Tensor& g) {
  opt.params()[i].value.mutable_grad() = g.clone();
}

TEST(TttOptimizer, SgdMomentumByHand) {
  TttUpdateOptions o;
  o.rule = TttMode::kSgd;
  o.momentum = 0.9;
  TttOptimizer opt(
      {param(torch::tensor({1.0, -2.0}, torch::kDouble), torch::tensor(0.5, torch::kDouble))}, o);
  const auto g1 = torch::tensor({0.1, 0.2}, torch::kDouble);
  const auto g2 = torch::tensor({-0.3, 0.4}, torch::kDouble);
  set_grad(opt, 0, g1);
  opt.step(0.01);
  set_grad(opt, 0, g2);
  opt.step(0.02);
  // b1 = g1; b2 = 0.9 g1 + g2; p = p0 - 0.01*0.5*b1 - 0.02*0.5*b2
  const double e0 = 1.0 - 0.005 * 0.1 - 0.01 * (0.9 * 0.1 - 0.3);
  const double e1 = -2.0 - 0.005 * 0.2 - 0.01 * (0.9 * 0.2 + 0.4);
  EXPECT_DOUBLE_EQ(opt.params()[0].value[0].item<double>(), e0);
  EXPECT_DOUBLE_EQ(opt.params()[0].value[1].item<double>(), e1);
}

TEST(TttOptimizer, AdamWByHand) {
  TttUpdateOptions o;
  o.rule = TttMode::kAdamW;
  TttOptimizer opt({param(torch::tensor({0.5}, torch::kDouble))}, o);
  const double g1 = 0.2, g2 = -0.1, lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  set_grad(opt, 0, torch::tensor({g1}, torch::kDouble));
  opt.step(lr);
  set_grad(opt, 0, torch::tensor({g2}, torch::kDouble));
  opt.step(lr);
  double p = 0.5, m = 0, v = 0;
  for (int t = 1; t <= 2; ++t) {
    const double g = t == 1 ? g1 : g2;
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    const double mhat = m / (1 - std::pow(b1, t));
    const double denom = std::sqrt(v) / std::sqrt(1 - std::pow(b2, t)) + eps;
    p -= lr * mhat / denom;
  }
  EXPECT_NEAR(opt.params()[0].value[0].item<double>(), p, 1e-15);
}

TEST(TttOptimizer, MatchesTorchOptimOverSeveralSteps) {
  torch::manual_seed(3);
  for (const TttMode rule : {TttMode::kSgd, TttMode::kAdamW}) {
    auto a = torch::randn({4, 3}, torch::kDouble).requires_grad_(true);
    auto b = a.detach().clone().requires_grad_(true);
    TttUpdateOptions o;
    o.rule = rule;
    TttOptimizer mine({{"w", a, {}}}, o);
    std::unique_ptr<torch::optim::Optimizer> ref;
    if (rule == TttMode::kSgd) {
      ref = std::make_unique<torch::optim::SGD>(std::vector<torch::Tensor>{b},
                                                torch::optim::SGDOptions(0.05).momentum(0.9));
    } else {
      ref = std::make_unique<torch::optim::AdamW>(std::vector<torch::Tensor>{b},
                                                  torch::optim::AdamWOptions(0.05).weight_decay(0));
    }
    for (int step = 0; step < 4; ++step) {
      const auto g = torch::randn({4, 3}, torch::kDouble);
      a.mutable_grad() = g.clone();
      b.mutable_grad() = g.clone();
      mine.step(0.05);
      ref->step();
    }
    EXPECT_TRUE(torch::allclose(a, b, 1e-12, 1e-14)) << name_of(rule);
  }
}

TEST(TttOptimizer, MuonOrthogonalisesMatricesAndStepsVectors) {
  TttUpdateOptions o;
  o.rule = TttMode::kMuon;
  o.ns_steps = 3;
  o.ns_dtype = torch::kDouble;
  auto w = torch::zeros({2, 2}, torch::kDouble);
  auto bias = torch::zeros({2}, torch::kDouble);
  TttOptimizer opt({param(w), param(bias)}, o);
  set_grad(opt, 0, torch::diag(torch::tensor({3.0, 4.0}, torch::kDouble)));
  set_grad(opt, 1, torch::tensor({1.0, -1.0}, torch::kDouble));
  opt.step(0.1);
  // NS on a diagonal matrix acts on each diagonal entry x = g/(|G|_F + 1e-7):
  // x <- a x + b x^3 + c x^5, three times.
  auto ns = [](double x) {
    for (int i = 0; i < 3; ++i) x = 3.4445 * x - 4.7750 * x * x * x + 2.0315 * std::pow(x, 5);
    return x;
  };
  EXPECT_NEAR(opt.params()[0].value[0][0].item<double>(), -0.1 * ns(3.0 / (5.0 + 1e-7)), 1e-12);
  EXPECT_NEAR(opt.params()[0].value[1][1].item<double>(), -0.1 * ns(4.0 / (5.0 + 1e-7)), 1e-12);
  EXPECT_DOUBLE_EQ(opt.params()[0].value[0][1].item<double>(), 0.0);
  EXPECT_DOUBLE_EQ(opt.params()[1].value[0].item<double>(), -0.1);
  EXPECT_DOUBLE_EQ(opt.params()[1].value[1].item<double>(), 0.1);
}

TEST(TttOptimizer, BankSliceScalesApplyPerSlice) {
  TttUpdateOptions o;
  o.rule = TttMode::kSgd;
  auto bank = torch::zeros({2, 1, 2}, torch::kDouble);
  TttOptimizer opt({param(bank, torch::tensor({0.0, 2.0}, torch::kDouble).view({2, 1, 1}))}, o);
  set_grad(opt, 0, torch::ones({2, 1, 2}, torch::kDouble));
  opt.step(0.1);
  EXPECT_DOUBLE_EQ(opt.params()[0].value[0][0][0].item<double>(), 0.0);   // frozen slice
  EXPECT_DOUBLE_EQ(opt.params()[0].value[1][0][1].item<double>(), -0.2);  // 2x slice
}

TEST(TttOptimizer, RejectsTheNoneMode) {
  TttUpdateOptions o;
  o.rule = TttMode::kNone;  // an unknown name is refused when parsed (tests/config)
  EXPECT_PGOLF_ERROR(TttOptimizer({}, o), "TTT update rule: none is not a rule");
}

}  // namespace
}  // namespace pgolf
