// The fused CPU kernels (kernels/fused.h): each equals the plain ATen
// composition it replaces (forward and gradients, float, within rounding),
// its hand-written backward matches central finite differences (double), and
// the model trains the same with and without them: a 50-step loss curve
// within bf16 tolerance, and with the switch off the plain path exactly.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/nn/functional/loss.h>

#include <functional>
#include <tuple>

#include "kernels/fused.h"
#include "model/gpt.h"
#include "model/layers.h"
#include "model/rotary.h"
#include "tests/kernels/checks.h"
#include "tests/test_util.h"
#include "tests/train/loss_curve.h"

namespace pgolf::kernels {
namespace {

using checks::expect_gradient_matches_finite_differences;
using checks::expect_matches_plain;
using checks::Fn;
using checks::max_abs_diff;

torch::Tensor plain_rms_norm(const torch::Tensor& x) {
  return at::rms_norm(x, {x.size(-1)}, {}, std::nullopt);
}

TEST(FusedKernels, TheSwitchAndWhereTheyApply) {
  FusedKernelsScope on(true);
  EXPECT_TRUE(applies(torch::zeros({2, 3})));
  EXPECT_TRUE(applies(torch::zeros({2, 3}, torch::kDouble)));
  EXPECT_TRUE(applies(torch::zeros({4, 2, 3}).transpose(0, 1)));  // rows still stride 1
  EXPECT_FALSE(applies(torch::zeros({2, 3}, torch::kBFloat16)));
  EXPECT_FALSE(applies(torch::zeros({3, 2}).t()));  // rows not contiguous
  EXPECT_FALSE(applies(torch::zeros({0, 3})));
  {
    FusedKernelsScope off(false);
    EXPECT_FALSE(applies(torch::zeros({2, 3})));
    EXPECT_TRUE(supports(torch::zeros({2, 3})));  // the kernels themselves still run
    EXPECT_TRUE(torch::allclose(rms_norm(torch::ones({2, 3})), torch::ones({2, 3})));
  }
  EXPECT_TRUE(fused_enabled());
}

TEST(FusedKernels, RmsNormMatchesThePlainOpsOnTransposedViews) {
  torch::manual_seed(1);
  // q as the attention sees it: (B, T, H, Dh) viewed as (B, H, T, Dh).
  const auto q = (torch::randn({3, 17, 4, 64}) * 3).transpose(1, 2);
  expect_matches_plain(q, rms_norm, plain_rms_norm, 2e-6);
  expect_matches_plain(torch::randn({33, 256}), rms_norm, plain_rms_norm, 2e-6);
  EXPECT_TRUE(rms_norm(q).is_contiguous());
}

TEST(FusedKernels, RmsNormGradientMatchesFiniteDifferences) {
  torch::manual_seed(2);
  // Through a transposed view, as q and k reach it.
  expect_gradient_matches_finite_differences(
      torch::randn({3, 2, 8}), [](const torch::Tensor& x) { return rms_norm(x.transpose(0, 1)); });
}

TEST(FusedKernels, ReluSquareMatchesThePlainOps) {
  torch::manual_seed(3);
  for (double slope : {0.0, 0.5}) {
    const Fn plain = [slope](const torch::Tensor& h) {
      return (slope > 0 ? torch::leaky_relu(h, slope) : torch::relu(h)).square();
    };
    const Fn fused = [slope](const torch::Tensor& h) { return relu_square(h, slope); };
    expect_matches_plain(torch::randn({70, 130}), fused, plain, 1e-6);
    expect_gradient_matches_finite_differences(torch::randn({5, 7}), fused);
  }
}

TEST(FusedKernels, RotaryMatchesThePlainOpsWithPartialDims) {
  torch::manual_seed(9);
  for (int64_t h : {32, 8}) {  // all 64 dims rotated; 16 of 64 rotated, 48 passed through
    const auto angles = torch::rand({1, 1, 19, h}) * 10;
    const auto cos = angles.cos(), sin = angles.sin();
    const Fn fused = [&](const torch::Tensor& x) { return rotary(x, cos, sin); };
    const Fn plain = [&](const torch::Tensor& x) { return apply_rotary(x, cos, sin); };
    expect_matches_plain(torch::randn({2, 19, 3, 64}).transpose(1, 2), fused, plain, 1e-6);
  }
  const auto angles = torch::rand({1, 1, 5, 3}, torch::kDouble) * 10;
  const auto cos = angles.cos(), sin = angles.sin();
  expect_gradient_matches_finite_differences(
      torch::randn({2, 5, 2, 8}),
      [&](const torch::Tensor& x) { return rotary(x.transpose(1, 2), cos, sin); });
  EXPECT_THROW(rotary(torch::randn({2, 4, 8}), cos.to(torch::kFloat), sin.to(torch::kFloat)),
               c10::Error);  // 4 positions, tables of 5
}

// The input gradients of a * x + b * y (a optional) from the kernel and from
// the plain ops, for one upstream gradient g.
std::vector<torch::Tensor> mix_grads(bool fused, bool with_a, const std::vector<torch::Tensor>& in,
                                     const torch::Tensor& g) {
  FusedKernelsScope scope(fused);
  std::vector<torch::Tensor> leaves;
  for (const auto& t : in) leaves.push_back(t.detach().clone().requires_grad_(true));
  const auto& [a, x, b, y] = std::tie(leaves[0], leaves[1], leaves[2], leaves[3]);
  const auto out = with_a ? pgolf::blend(a, x, b, y) : pgolf::add_scaled(x, b, y);
  (out * g).sum().backward();
  std::vector<torch::Tensor> grads{out.detach()};
  for (size_t i = with_a ? 0 : 1; i < leaves.size(); ++i) grads.push_back(leaves[i].grad());
  return grads;
}

TEST(FusedKernels, MixMatchesThePlainOpsAndItsReductionsDoNotDependOnThreads) {
  torch::manual_seed(10);
  const std::vector<torch::Tensor> in{torch::randn({48}), torch::randn({3, 150, 48}),
                                      torch::randn({48}), torch::randn({3, 150, 48})};
  const auto g = torch::randn({3, 150, 48});
  for (bool with_a : {true, false}) {
    const auto fused = mix_grads(true, with_a, in, g);
    const auto plain = mix_grads(false, with_a, in, g);
    ASSERT_EQ(fused.size(), plain.size());
    for (size_t i = 0; i < fused.size(); ++i) {
      EXPECT_LE(max_abs_diff(fused[i], plain[i]),
                2e-5 * std::max(1.0, plain[i].abs().max().item<double>()))
          << "output/gradient " << i << (with_a ? " (a x + b y)" : " (x + b y)");
    }
    const int threads = at::get_num_threads();
    at::set_num_threads(1);
    const auto one_thread = mix_grads(true, with_a, in, g);
    at::set_num_threads(threads);
    for (size_t i = 0; i < fused.size(); ++i) EXPECT_TRUE(torch::equal(one_thread[i], fused[i]));
  }
  expect_gradient_matches_finite_differences(torch::randn({4, 6}), [](const torch::Tensor& x) {
    const auto a = x.select(0, 0), b = x.select(0, 1);  // the vectors and the rows share x
    return mix(a, x.slice(0, 2), b, x.slice(0, 2) * 3);
  });
  EXPECT_THROW(mix({}, torch::randn({2, 4}), torch::randn({3}), torch::randn({2, 4})), c10::Error);
}

torch::Tensor plain_softcap_ce(const torch::Tensor& z, const torch::Tensor& targets, double cap) {
  namespace F = torch::nn::functional;
  return F::cross_entropy(cap * torch::tanh(z / cap), targets,
                          F::CrossEntropyFuncOptions().reduction(torch::kNone));
}

TEST(FusedKernels, SoftcapCrossEntropyMatchesThePlainOps) {
  torch::manual_seed(4);
  const auto targets = torch::randint(0, 1024, {96});
  for (double cap : {30.0, 5.0}) {
    // Logits from near 0 to far into the cap's saturation.
    const auto z = torch::randn({96, 1024}) * torch::linspace(0.01, 80, 96).unsqueeze(1);
    expect_matches_plain(
        z, [&](const torch::Tensor& x) { return softcap_cross_entropy(x, targets, cap); },
        [&](const torch::Tensor& x) { return plain_softcap_ce(x, targets, cap); }, 2e-6);
  }
}

TEST(FusedKernels, SoftcapCrossEntropyGradientMatchesFiniteDifferences) {
  torch::manual_seed(5);
  const auto targets = torch::tensor({3, 0, 9, 9}, torch::kLong);
  expect_gradient_matches_finite_differences(torch::randn({4, 10}) * 6, [&](const auto& z) {
    return softcap_cross_entropy(z, targets, 4.0);
  });
}

TEST(FusedKernels, SoftcapCrossEntropyOfAMeanAndBadTargets) {
  torch::manual_seed(6);
  const auto z = torch::randn({8, 16}, torch::requires_grad());
  const auto targets = torch::randint(0, 16, {8});
  softcap_cross_entropy(z, targets, 30.0).mean().backward();  // upstream gradient of stride 0
  auto z2 = z.detach().clone().requires_grad_(true);
  plain_softcap_ce(z2, targets, 30.0).mean().backward();
  EXPECT_LE(max_abs_diff(z.grad(), z2.grad()), 1e-7);
  EXPECT_THROW(softcap_cross_entropy(z, torch::full({8}, 16, torch::kLong), 30.0), c10::Error);
  EXPECT_THROW(softcap_cross_entropy(z, torch::zeros({7}, torch::kLong), 30.0), c10::Error);
  EXPECT_THROW(softcap_cross_entropy(z, targets.to(torch::kInt), 30.0), c10::Error);
}

TEST(FusedKernels, WorkUnderInferenceMode) {
  torch::manual_seed(7);
  const auto x = torch::randn({5, 32});
  const auto targets = torch::randint(0, 32, {5});
  c10::InferenceMode inference;
  EXPECT_LE(max_abs_diff(rms_norm(x), plain_rms_norm(x)), 1e-6);
  EXPECT_LE(max_abs_diff(relu_square(x, 0.0), torch::relu(x).square()), 1e-6);
  EXPECT_LE(
      max_abs_diff(softcap_cross_entropy(x, targets, 30.0), plain_softcap_ce(x, targets, 30.0)),
      1e-5);
}

// 50 training steps of a tiny baseline model (one repeated batch), fused or plain.
std::vector<double> loss_curve(bool fused, double leaky_slope) {
  FusedKernelsScope scope(fused);
  ModelConfig m = testing::two_layer_model({}, 32);
  m.leaky_slope = leaky_slope;
  TrainConfig t;
  t.muon_ns_bf16 = false;
  return testing::loss_curve(m, t);
}

TEST(FusedKernels, FiftyStepLossCurveMatchesThePlainPathWithinBf16Tolerance) {
  for (double slope : {0.0, 0.5}) {
    const auto plain = loss_curve(false, slope);
    const auto fused = loss_curve(true, slope);
    EXPECT_NEAR(fused.front(), plain.front(), 1e-5);
    for (size_t i = 0; i < plain.size(); ++i) {
      EXPECT_NEAR(fused[i], plain[i], 1e-2 * std::max(1.0, std::abs(plain[i])))
          << "step " << i << " slope " << slope;
    }
    EXPECT_LT(fused.back(), fused.front() - 1.0);
  }
}

TEST(FusedKernels, SwitchedOffTheModelRunsThePlainOps) {
  torch::manual_seed(8);
  const auto x = torch::randn({4, 64});
  FusedKernelsScope off(false);
  EXPECT_TRUE(torch::equal(pgolf::rms_norm(x), plain_rms_norm(x)));
}

}  // namespace
}  // namespace pgolf::kernels
