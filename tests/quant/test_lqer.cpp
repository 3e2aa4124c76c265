// Tests for quant/lqer: the factors' packings (ranges, scales, shapes), the
// correction approximating the error it factors, the symmetric fallback when
// the group does not divide B, and the checks a file's factors must pass.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "quant/lqer.h"
#include "tests/quant/single_thread.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

class QuantLqerTest : public testing::SingleThreadTest {};

// An error that is nearly rank 2, [48, 64].
torch::Tensor low_rank_error() {
  torch::manual_seed(3);
  return torch::matmul(torch::randn({48, 2}), torch::randn({2, 64})) +
         0.01 * torch::randn({48, 64});
}

TEST_F(QuantLqerTest, AsymmetricFactorsUseInt2AndGroupsOf64) {
  const torch::Tensor e = low_rank_error();
  const LowRankFactors f = lqer_factorize(e, LqerOptions{});
  ASSERT_TRUE(f.asymmetric);
  EXPECT_EQ(f.rank(), 4);
  EXPECT_EQ(f.a.sizes(), (std::vector<int64_t>{48, 4}));
  EXPECT_EQ(f.b.sizes(), (std::vector<int64_t>{4, 64}));
  EXPECT_EQ(f.a_scale.dim(), 0);
  EXPECT_EQ(f.b_scale.numel(), 4 * 64 / 64);
  EXPECT_GE(f.a.min().item<int>(), -2);
  EXPECT_LE(f.a.max().item<int>(), 1);
  EXPECT_GE(f.b.min().item<int>(), -8);
  EXPECT_LE(f.b.max().item<int>(), 7);
  // sA = fp16(max|A| / 1.5): the largest |A| maps to code -2 or +1 (saturated).
  const auto [u, s, vh] = torch::linalg_svd(e, false);
  const torch::Tensor a = u.slice(1, 0, 4) * s.slice(0, 0, 4);
  const float expected_sa = (a.abs().max() / 1.5).to(torch::kHalf).item<float>();
  EXPECT_EQ(f.a_scale.item<float>(), expected_sa);
  check_lqer_factors(f, 48, 64, "test");
}

TEST_F(QuantLqerTest, CorrectionShrinksTheErrorItFactors) {
  const torch::Tensor e = low_rank_error();
  for (const bool asymmetric : {true, false}) {
    LqerOptions options;
    options.asymmetric = asymmetric;
    const LowRankFactors f = lqer_factorize(e, options);
    EXPECT_EQ(f.asymmetric, asymmetric);
    const double before = e.norm().item<double>();
    const double after = (e - lqer_correction(f)).norm().item<double>();
    EXPECT_LT(after, (asymmetric ? 0.6 : 0.3) * before) << "asymmetric " << asymmetric;
  }
}

TEST_F(QuantLqerTest, SymmetricWhenTheGroupDoesNotDivideB) {
  torch::manual_seed(4);
  const torch::Tensor e = torch::randn({10, 30});  // 4 x 30 = 120, not a multiple of 64
  const LowRankFactors f = lqer_factorize(e, LqerOptions{});
  EXPECT_FALSE(f.asymmetric);
  EXPECT_EQ(f.bits, 4);
  EXPECT_EQ(f.a_scale.sizes(), (std::vector<int64_t>{10}));
  EXPECT_EQ(f.b_scale.sizes(), (std::vector<int64_t>{4}));
  EXPECT_LE(f.a.abs().max().item<int>(), 7);
  EXPECT_LE(f.b.abs().max().item<int>(), 7);
  // Rank is capped by the matrix: a 3-column error has 3 singular values.
  const LowRankFactors thin = lqer_factorize(torch::randn({10, 3}), LqerOptions{});
  EXPECT_EQ(thin.rank(), 3);
}

TEST_F(QuantLqerTest, FactorsFromAFileAreChecked) {
  const LowRankFactors good = lqer_factorize(low_rank_error(), LqerOptions{});
  EXPECT_PGOLF_ERROR(check_lqer_factors(good, 47, 64, "t"), "do not fit a 47 x 64 tensor");
  LowRankFactors bad = good;
  bad.a = good.a.clone();
  bad.a[0][0] = 2;  // int2 codes stop at +1
  EXPECT_PGOLF_ERROR(check_lqer_factors(bad, 48, 64, "t"), "outside [-2, 1]");
  bad = good;
  bad.b_scale = good.b_scale.slice(0, 0, 3);  // 256 values in groups of 3 scales: no
  EXPECT_PGOLF_ERROR(check_lqer_factors(bad, 48, 64, "t"), "asymmetric LQER scales");
  bad = good;
  bad.a = good.a.to(torch::kInt16);
  EXPECT_PGOLF_ERROR(check_lqer_factors(bad, 48, 64, "t"), "not int8");
}

}  // namespace
}  // namespace pgolf
