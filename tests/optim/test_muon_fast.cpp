// The bf16 Newton-Schulz computed with fp32 kernels (MUON_NS_BF16_VIA_FP32):
// PyTorch 2.x's bf16 numbers (golden), close to ATen's own bf16 path, the same
// 50-step loss curve within bf16 tolerance, and with the switch off the plain
// path exactly.
#include <gtest/gtest.h>

#include "io/safetensors.h"
#include "model/gpt.h"
#include "optim/muon.h"
#include "tests/test_util.h"
#include "tests/train/loss_curve.h"

namespace pgolf {
namespace {

double rel_fro(const torch::Tensor& a, const torch::Tensor& ref) {
  return ((a.to(torch::kDouble) - ref.to(torch::kDouble)).norm() / ref.to(torch::kDouble).norm())
      .item<double>();
}

TEST(NewtonSchulzViaFp32, EqualsPyTorch2Bf16BitForBit) {
  PGOLF_REQUIRE_SHARED();
  const auto f =
      read_safetensors(testing::shared_dir() / "golden" / "baseline" / "muon_ns5.safetensors");
  for (const std::string prefix : {"", "tall_"}) {
    const auto out = newton_schulz5_bf16_via_fp32(find_tensor(f, prefix + "input"), 5);
    EXPECT_EQ(out.scalar_type(), torch::kBFloat16);
    EXPECT_TRUE(torch::equal(out, find_tensor(f, prefix + "output_bf16_torch2_emulated")))
        << prefix;
  }
}

TEST(NewtonSchulzViaFp32, CloseToATensBf16PathForMatricesAndBanks) {
  torch::manual_seed(3);
  for (const auto& shape : std::vector<std::vector<int64_t>>{{48, 96}, {96, 48}, {3, 32, 64}}) {
    const auto G = torch::randn(shape);
    const auto fast = newton_schulz5_bf16_via_fp32(G, 5);
    const auto plain = newton_schulz5(G, 5, torch::kBFloat16);
    EXPECT_EQ(fast.sizes(), plain.sizes());
    // bf16 Newton-Schulz amplifies single-ulp differences (golden README):
    // compare in Frobenius norm, at a fraction of bf16-vs-fp32's own gap.
    EXPECT_LE(rel_fro(fast, plain), 2e-2) << G.sizes();
  }
}

// One Muon step by hand with the plain bf16 Newton-Schulz.
torch::Tensor plain_muon_step(const torch::Tensor& p, const torch::Tensor& g, double lr,
                              double mu) {
  auto buf = g.clone();  // zeros * mu + g
  auto u = g.add(buf, mu);
  auto o = newton_schulz5(u, 5, torch::kBFloat16);
  const double scale = std::sqrt(std::max(1.0, static_cast<double>(p.size(0)) / p.size(1)));
  return p.add((o * scale).to(torch::kBFloat16).to(p.scalar_type()), -lr);
}

TEST(NewtonSchulzViaFp32, SwitchedOffMuonIsThePlainPathExactly) {
  torch::manual_seed(4);
  const auto p0 = torch::randn({40, 24});
  const auto g = torch::randn({40, 24});
  auto p = p0.clone().requires_grad_(true);
  p.mutable_grad() = g.clone();
  MuonOptions options;
  options.ns_dtype = torch::kBFloat16;
  options.ns_bf16_via_fp32 = false;
  Muon muon({p}, options);
  muon.step(0.04, 0.95);
  EXPECT_TRUE(torch::equal(p.detach(), plain_muon_step(p0, g, 0.04, 0.95)));
}

// 50 training steps of a tiny baseline model with bf16 Newton-Schulz.
std::vector<double> loss_curve(bool via_fp32) {
  TrainConfig t;
  t.muon_ns_bf16 = true;
  t.muon_ns_bf16_via_fp32 = via_fp32;
  return testing::loss_curve(testing::two_layer_model({}, 32), t);
}

TEST(NewtonSchulzViaFp32, FiftyStepLossCurveMatchesWithinBf16Tolerance) {
  const auto plain = loss_curve(false);
  const auto fast = loss_curve(true);
  EXPECT_EQ(plain.front(), fast.front());  // same model, same batch: step 0 is before any update
  for (size_t i = 0; i < plain.size(); ++i) {
    EXPECT_NEAR(fast[i], plain[i], 2e-2 * std::max(1.0, std::abs(plain[i]))) << "step " << i;
  }
  EXPECT_LT(fast.back(), fast.front() - 1.0);  // and it learns (one repeated batch)
}

}  // namespace
}  // namespace pgolf
