// Newton-Schulz and the Muon step against the reference's outputs
// (golden muon_ns5 / muon_step fixtures), within golden/README.md's bounds.
#include <gtest/gtest.h>

#include "common/error.h"
#include "io/safetensors.h"
#include "optim/muon.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

std::filesystem::path golden() { return testing::shared_dir() / "golden" / "baseline"; }

double rel_fro(const torch::Tensor& a, const torch::Tensor& ref) {
  return ((a.to(torch::kDouble) - ref.to(torch::kDouble)).norm() / ref.to(torch::kDouble).norm())
      .item<double>();
}

TEST(NewtonSchulz, Fp32MatchesReferenceElementwise) {
  PGOLF_REQUIRE_SHARED();
  const auto f = read_safetensors(golden() / "muon_ns5.safetensors");
  for (const std::string prefix : {"", "tall_"}) {
    const auto out = newton_schulz5(find_tensor(f, prefix + "input"), 5, torch::kFloat);
    const auto ref = find_tensor(f, prefix + "output_fp32");
    EXPECT_LE((out - ref).abs().max().item<double>(), 1e-5) << prefix;
  }
}

TEST(NewtonSchulz, Bf16IsCloseInFrobeniusNorm) {
  PGOLF_REQUIRE_SHARED();
  const auto f = read_safetensors(golden() / "muon_ns5.safetensors");
  for (const std::string prefix : {"", "tall_"}) {
    const auto out = newton_schulz5(find_tensor(f, prefix + "input"), 5, torch::kBFloat16);
    EXPECT_EQ(out.scalar_type(), torch::kBFloat16);
    EXPECT_LE(rel_fro(out, find_tensor(f, prefix + "output_fp32")), 6e-2) << prefix;
  }
}

TEST(NewtonSchulz, OutputIsNearlyOrthogonal) {
  torch::manual_seed(0);
  const auto X = newton_schulz5(torch::randn({64, 256}), 5, torch::kFloat);
  // NS5 pushes singular values into roughly [0.68, 1.13], not exactly 1.
  const auto s = torch::linalg_svdvals(X.to(torch::kDouble));
  EXPECT_GT(s.min().item<double>(), 0.5);
  EXPECT_LT(s.max().item<double>(), 1.25);
}

// #1855's Polar Express tuples: the first iteration is (8.1566, -22.483,
// 15.879), and one step of the fp64 iteration agrees with the hand formula;
// five steps land the singular values closer to 1 than the fixed quintic.
TEST(NewtonSchulz, PolarExpressCoefficients) {
  EXPECT_DOUBLE_EQ(ns_coefficients(NsCoefficients::kPolarExpress, 0).a, 8.156554524902461);
  EXPECT_DOUBLE_EQ(ns_coefficients(NsCoefficients::kPolarExpress, 4).c, 0.42323551169305323);
  EXPECT_EQ(ns_iterations(NsCoefficients::kPolarExpress, 7), 5);
  EXPECT_EQ(ns_iterations(NsCoefficients::kQuintic, 7), 7);
  EXPECT_PGOLF_ERROR(ns_coefficients(NsCoefficients::kPolarExpress, 5), "5 iterations");
  torch::manual_seed(1);
  const auto G = torch::randn({16, 32}, torch::kDouble);
  auto X = G / (G.norm() + 1e-7);
  const auto [a, b, c] = ns_coefficients(NsCoefficients::kPolarExpress, 0);
  const auto A = X.mm(X.t());
  const auto expected = a * X + (b * A + (c * A).mm(A)).mm(X);
  const auto got = newton_schulz5(G, 1, torch::kDouble, 1e-7, NsCoefficients::kPolarExpress);
  EXPECT_LT((got - expected).abs().max().item<double>(), 1e-12);
  const auto pe = torch::linalg_svdvals(
      newton_schulz5(torch::randn({64, 256}), 5, torch::kFloat, 1e-7, NsCoefficients::kPolarExpress)
          .to(torch::kDouble));
  EXPECT_GT(pe.min().item<double>(), 0.8);
  EXPECT_LT(pe.max().item<double>(), 1.2);
  // The bf16-via-fp32 path takes the same coefficients.
  const auto H = torch::randn({32, 64});
  const auto ref = newton_schulz5(H, 5, torch::kBFloat16, 1e-7, NsCoefficients::kPolarExpress);
  const auto fast = newton_schulz5_bf16_via_fp32(H, 5, 1e-7, NsCoefficients::kPolarExpress);
  EXPECT_LT((ref.to(torch::kFloat) - fast.to(torch::kFloat)).abs().max().item<double>(), 0.05);
}

TEST(MuonStep, TwoStepsMatchReferenceFp32Variant) {
  PGOLF_REQUIRE_SHARED();
  const auto f = read_safetensors(golden() / "muon_step.safetensors");
  auto wide = find_tensor(f, "wide.p0").clone().requires_grad_(true);
  auto tall = find_tensor(f, "tall.p0").clone().requires_grad_(true);
  MuonOptions options;
  options.ns_dtype = torch::kFloat;
  Muon muon({wide, tall}, options);
  for (int step = 1; step <= 2; ++step) {
    const std::string k = std::to_string(step);
    wide.mutable_grad() = find_tensor(f, "wide.grad" + k).clone();
    tall.mutable_grad() = find_tensor(f, "tall.grad" + k).clone();
    muon.step(0.04, 0.95);
    int i = 0;
    for (const std::string name : {"wide", "tall"}) {
      const auto& p = i == 0 ? wide : tall;
      const auto ref = find_tensor(f, "ns_fp32." + name + ".p" + k);
      const auto err = (p.detach() - ref).abs();
      EXPECT_LE(err.max().item<double>(), 5e-5) << name << " step " << step;
      EXPECT_GE((err <= 1e-6).to(torch::kDouble).mean().item<double>(), 0.99) << name;
      const auto buf_ref = find_tensor(f, "ns_fp32." + name + ".momentum_buffer" + k);
      EXPECT_LE((muon.momentum_buffers()[i] - buf_ref).abs().max().item<double>(), 1e-6) << name;
      ++i;
    }
  }
}

TEST(MuonStep, SkipsParametersWithoutGradient) {
  auto p = torch::randn({8, 4}).requires_grad_(true);
  const auto before = p.detach().clone();
  Muon muon({p}, MuonOptions{});
  muon.step(0.1, 0.9);
  EXPECT_TRUE(torch::equal(p.detach(), before));
}

}  // namespace
}  // namespace pgolf
