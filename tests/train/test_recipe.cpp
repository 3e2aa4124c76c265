// The entries' recipe pieces against hand-computed values (spec
// model-and-training §4.4-4.12): Muon and AdamW weight decay, MuonEq-R, EMA,
// SWA, and late QAT's fake quantiser with its straight-through gradient.
#include <gtest/gtest.h>
#include <torch/optim/adamw.h>

#include "optim/muon.h"
#include "quant/fake_quant.h"
#include "train/averaging.h"

namespace pgolf {
namespace {

TEST(MuonRecipe, DecoupledWeightDecayUsesTheScheduledLr) {
  torch::manual_seed(0);
  const auto w0 = torch::randn({8, 16});
  const auto grad = torch::randn({8, 16});
  auto run = [&](double wd) {
    auto p = w0.clone().requires_grad_();
    p.mutable_grad() = grad.clone();
    MuonOptions options;
    options.ns_dtype = torch::kFloat;
    options.weight_decay = wd;
    Muon muon({p}, options);
    muon.step(/*lr=*/0.02, /*momentum=*/0.9);
    return p.detach();
  };
  // W <- W (1 - lr wd) - lr O: the decayed run is the plain run minus lr*wd*W0.
  EXPECT_TRUE(torch::allclose(run(0.04), run(0.0) - 0.02 * 0.04 * w0, 1e-6, 1e-7));
}

TEST(MuonRecipe, MuonEqRNormalisesRowsBeforeNewtonSchulz) {
  torch::manual_seed(0);
  auto g = torch::randn({4, 12}) * torch::tensor({1.0, 10.0, 0.1, 3.0}).unsqueeze(1);
  auto p = torch::zeros({4, 12}).requires_grad_();
  p.mutable_grad() = g.clone();
  MuonOptions options;
  options.ns_dtype = torch::kFloat;
  options.row_normalize = true;
  Muon muon({p}, options);
  muon.step(1.0, /*momentum=*/0.0);  // U = G (no momentum)
  const auto rows = g / g.norm(2, {-1}, true);
  const auto expected =
      -newton_schulz5(rows, 5, torch::kFloat).to(torch::kBFloat16).to(torch::kFloat);
  EXPECT_TRUE(torch::allclose(p.detach(), expected, 1e-6, 1e-6));
}

TEST(AdamWRecipe, WeightDecayIsDecoupledAndScaledByLr) {
  torch::manual_seed(0);
  const auto w0 = torch::randn({5});
  const auto grad = torch::randn({5});
  auto run = [&](double wd) {
    auto p = w0.clone().requires_grad_();
    torch::optim::AdamW adam(
        {p}, torch::optim::AdamWOptions(0.01).betas({0.9, 0.95}).eps(1e-8).weight_decay(wd));
    p.mutable_grad() = grad.clone();
    adam.step();
    return p.detach();
  };
  EXPECT_TRUE(torch::allclose(run(0.04), run(0.0) - 0.01 * 0.04 * w0, 1e-6, 1e-8));
}

TEST(Ema, UpdatesAsDecayTimesShadowPlusRest) {
  auto w = torch::tensor({1.0, -2.0});
  Ema ema({w}, 0.997);
  w.copy_(torch::tensor({3.0, 0.0}));
  ema.update({w});
  EXPECT_NEAR(ema.shadow()[0][0].item<double>(), 0.997 * 1 + 0.003 * 3, 1e-6);
  EXPECT_NEAR(ema.shadow()[0][1].item<double>(), 0.997 * -2, 1e-6);
  ema.update({w});
  EXPECT_NEAR(ema.shadow()[0][0].item<double>(), 0.997 * (0.997 + 0.009) + 0.009, 1e-6);
  ema.apply_to({w});
  EXPECT_NEAR(w[0].item<double>(), 0.997 * (0.997 + 0.009) + 0.009, 1e-6);
}

TEST(Swa, CollectsEveryNStepsBelowTheStartFractionAndAverages) {
  Swa swa(50, 0.2);
  EXPECT_TRUE(swa.due(4650, 0.19));
  EXPECT_FALSE(swa.due(4650, 0.2));   // s must be below the threshold
  EXPECT_FALSE(swa.due(4651, 0.01));  // and the step a multiple of SWA_EVERY
  auto w = torch::tensor({1.0, 2.0});
  swa.apply_to({w});  // nothing collected: no-op
  EXPECT_EQ(w[1].item<double>(), 2.0);
  for (double v : {1.0, 2.0, 6.0}) {
    w.fill_(v);
    swa.collect({w});
  }
  EXPECT_EQ(swa.count(), 3);
  swa.apply_to({w});
  EXPECT_NEAR(w[0].item<double>(), 3.0, 1e-6);
}

TEST(LateQat, ScriptsRuleMatchesHandComputedCodes) {
  // s = max(rowmax/31, 1/31) = 1/31: codes round(31 w) = 16 (half to even), -8, 3.
  const auto w = torch::tensor({{0.5, -0.25, 0.1}});
  const auto q = quantize_dequantize_rows(w, {31, /*match_export=*/false});
  EXPECT_TRUE(torch::allclose(q, torch::tensor({{16.0, -8.0, 3.0}}) / 31.0, 0, 1e-7));
  // Large rows: s = rowmax/31, codes clamp to [-32, 31].
  const auto big = torch::tensor({{3.1, -3.1, 1.0}});
  const auto qb = quantize_dequantize_rows(big, {31, false});
  EXPECT_NEAR(qb[0][0].item<double>(), 3.1, 1e-6);
  EXPECT_NEAR(qb[0][2].item<double>(), 10 * 0.1, 1e-6);
}

TEST(LateQat, ExportRuleUsesTheFp16RowScale) {
  const auto w = torch::tensor({{0.5, -0.25, 0.1}, {0.0, 0.0, 0.0}});
  const auto q = quantize_dequantize_rows(w, {31, /*match_export=*/true});
  const double s = static_cast<double>(at::Half(0.5f / 31.0f));
  EXPECT_NEAR(q[0][0].item<double>(), std::round(0.5 / s) * s, 1e-7);
  EXPECT_NEAR(q[0][2].item<double>(), std::nearbyint(0.1 / s) * s, 1e-7);
  EXPECT_EQ(q[1].abs().max().item<double>(), 0.0);  // zero rows stay zero (scale floor 2^-14)
  // int5: codes in [-16, 15].
  const auto q5 = quantize_dequantize_rows(torch::tensor({{-1.0, 1.0}}), {15, true});
  const double s5 = static_cast<double>(at::Half(1.0f / 15.0f));
  EXPECT_NEAR(q5[0][0].item<double>(), -15 * s5, 1e-7);
}

TEST(LateQat, ForwardIsQuantisedAndGradientIsIdentity) {
  torch::manual_seed(0);
  auto w = (torch::randn({6, 10}) * 0.05).requires_grad_();
  const FakeQuantSpec spec{31, true};
  auto out = fake_quantize(w, spec);
  EXPECT_TRUE(torch::equal(out.detach(), quantize_dequantize_rows(w, spec)));
  const auto c = torch::randn({6, 10});
  (out * c).sum().backward();
  EXPECT_TRUE(torch::equal(w.grad(), c));
  EXPECT_TRUE(fake_quantize(w, FakeQuantSpec{}).is_same(w));  // off: untouched
}

}  // namespace
}  // namespace pgolf
