// Tests for quant/intn: the int5/int6 grids and scale floors of #1406 and
// #461 against values computed with the seeds' own functions (PyTorch 2.x),
// hand-checked floors, per-tensor scales, and codes that stay in range.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <vector>

#include "quant/clip_search.h"
#include "quant/intn.h"
#include "tests/quant/single_thread.h"

namespace pgolf {
namespace {

class QuantIntNTest : public testing::SingleThreadTest {};

// 5 x 16: row 1 has an outlier (4.0); row 2 is ~0.01 (below #1406's floor);
// row 3 is zero; row 4 is ~1e-4 (below #461's floor).
const std::vector<float> kW = {-1.12583983f,
                               -1.1523602f,
                               -0.250578582f,
                               -0.433878809f,
                               0.848710358f,
                               0.692009151f,
                               -0.31601277f,
                               -2.11521935f,
                               0.322274923f,
                               -1.26333475f,
                               0.349983186f,
                               0.30813393f,
                               0.119841509f,
                               1.2376579f,
                               1.11677718f,
                               -0.247278154f,
                               -1.35265374f,
                               -1.6959312f,
                               0.566650629f,
                               4.f,
                               0.598839462f,
                               -1.55509508f,
                               -0.34136039f,
                               1.85300612f,
                               0.750189483f,
                               -0.585497558f,
                               -0.173396751f,
                               0.183477938f,
                               1.38936615f,
                               1.58633423f,
                               0.946298361f,
                               -0.843676746f,
                               -0.00613583066f,
                               0.000315927406f,
                               -0.00492676953f,
                               0.00248414744f,
                               0.00439695828f,
                               0.00112411182f,
                               0.00640792353f,
                               0.00441156281f,
                               -0.0010230965f,
                               0.00792443939f,
                               -0.002896677f,
                               0.000525074836f,
                               0.00522860466f,
                               0.0230220519f,
                               -0.0146889389f,
                               -0.0158668868f,
                               0.f,
                               0.f,
                               0.f,
                               0.f,
                               0.f,
                               0.f,
                               0.f,
                               0.f,
                               0.f,
                               0.f,
                               0.f,
                               0.f,
                               0.f,
                               0.f,
                               0.f,
                               0.f,
                               -5.69248077e-05f,
                               9.19971353e-05f,
                               0.000111081608f,
                               0.000128987405f,
                               -0.000147817394f,
                               0.000256723288f,
                               -4.73119799e-05f,
                               3.35550758e-05f,
                               -0.0001629326f,
                               -5.49743636e-05f,
                               -4.79834234e-05f,
                               -4.99681519e-05f,
                               -0.000106698033f,
                               0.000111493951f,
                               -1.40671427e-05f,
                               8.05753589e-05f};

torch::Tensor weight() { return torch::tensor(kW).reshape({5, 16}); }

void expect_codes(const torch::Tensor& q, const std::vector<int>& expected) {
  ASSERT_EQ(q.scalar_type(), torch::kInt8);
  ASSERT_EQ(q.numel(), static_cast<int64_t>(expected.size()));
  const torch::Tensor flat = q.flatten().to(torch::kInt32).contiguous();
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(flat[static_cast<int64_t>(i)].item<int>(), expected[i]) << "code " << i;
  }
}

void expect_scales(const torch::Tensor& s, const std::vector<float>& expected) {
  ASSERT_EQ(s.scalar_type(), torch::kFloat16);
  ASSERT_EQ(s.numel(), static_cast<int64_t>(expected.size()));
  const torch::Tensor f = s.flatten().to(torch::kFloat32).contiguous();
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(f[static_cast<int64_t>(i)].item<float>(), expected[i]) << "scale " << i;
  }
}

TEST_F(QuantIntNTest, GridsAreTheSeeds) {
  EXPECT_EQ(int6_pr1406().qmin, -31);
  EXPECT_EQ(int6_pr1406().qmax, 31);
  EXPECT_EQ(int6_pr461().qmin, -32);
  EXPECT_EQ(int6_pr461().qmax, 31);
  EXPECT_EQ(int5_pr461().qmin, -16);
  EXPECT_EQ(int5_pr461().qmax, 15);
  EXPECT_EQ(int5_pr461().bits, 5);
  EXPECT_EQ(int6_pr1406().describe(), "int6 [-31, 31] (#1406 scale floor)");
}

TEST_F(QuantIntNTest, ScaleFloorsByHand) {
  const torch::Tensor clips = torch::tensor({0.0f, 0.5f, 3.1f, 1e-4f});
  // #1406: max(c/31, 1/31) in fp32, then fp16. fp16(1/31) = 0.0322570801;
  // fp16(3.1/31 = 0.1) = 0.0999755859.
  expect_scales(row_scales(clips, int6_pr1406()),
                {0.0322570801f, 0.0322570801f, 0.0999755859f, 0.0322570801f});
  // #461: fp16(max(c/31, 1e-12)) then at least 2^-14 = 6.10351562e-05. 0.5/31
  // = 0.016129 -> fp16 0.0161285400; 1e-4/31 is subnormal in fp16 -> 2^-14.
  expect_scales(row_scales(clips, int6_pr461()),
                {6.10351562e-05f, 0.0161285400f, 0.0999755859f, 6.10351562e-05f});
  // int5: 0.5/15 = 0.0333333 -> fp16 0.0333251953; 3.1/15 -> 0.206665039.
  expect_scales(row_scales(clips, int5_pr461()),
                {6.10351562e-05f, 0.0333251953f, 0.206665039f, 6.10351562e-05f});
}

TEST_F(QuantIntNTest, Pr1406ClipSearchMatchesReference) {
  int chosen = -1;
  const IntQuantized q =
      clip_search_per_matrix(weight(), int6_pr1406(), clip_candidates_pr1406(), &chosen);
  EXPECT_EQ(chosen, 3);  // p = 0.99999
  // Row 2 (|w| <= 0.023) hits the floor: s = fp16(1/31); 0.0230/0.03226 rounds to 1.
  expect_scales(q.scale, {0.0682373047f, 0.12902832f, 0.0322570801f, 0.0322570801f, 0.0322570801f});
  expect_codes(q.q,
               {-16, -17, -4, -6, 12, 10, -5, -31, 5,  -19, 5, 5,  2, 18, 16, -4, -10, -13, 4, 31,
                5,   -12, -3, 14, 6,  -5, -1, 1,   11, 12,  7, -7, 0, 0,  0,  0,  0,   0,   0, 0,
                0,   0,   0,  0,  0,  1,  0,  0,   0,  0,   0, 0,  0, 0,  0,  0,  0,   0,   0, 0,
                0,   0,   0,  0,  0,  0,  0,  0,   0,  0,   0, 0,  0, 0,  0,  0,  0,   0,   0, 0});
}

TEST_F(QuantIntNTest, Pr461RowMaxInt6AndInt5MatchReference) {
  const IntQuantized q6 = quantize_rowmax(weight(), int6_pr461());
  expect_scales(q6.scale,
                {0.0682373047f, 0.12902832f, 0.000742435455f, 6.10351562e-05f, 6.10351562e-05f});
  expect_codes(
      q6.q, {-16, -17, -4, -6, 12, 10, -5,  -31, 5,  -19, 5,  5,  2,  18, 16, -4, -10, -13, 4, 31,
             5,   -12, -3, 14, 6,  -5, -1,  1,   11, 12,  7,  -7, -8, 0,  -7, 3,  6,   2,   9, 6,
             -1,  11,  -4, 1,  7,  31, -20, -21, 0,  0,   0,  0,  0,  0,  0,  0,  0,   0,   0, 0,
             0,   0,   0,  0,  -1, 2,  2,   2,   -2, 4,   -1, 1,  -3, -1, -1, -1, -2,  2,   0, 1});
  const IntQuantized q5 = quantize_rowmax(weight(), int5_pr461());
  expect_scales(q5.scale,
                {0.140991211f, 0.266601562f, 0.00153446198f, 6.10351562e-05f, 6.10351562e-05f});
  expect_codes(q5.q,
               {-8, -8, -2, -3, 6,  5,  -2,  -15, 2,  -9, 2,  2,  1,  9,  8,  -2, -5, -6, 2, 15,
                2,  -6, -1, 7,  3,  -2, -1,  1,   5,  6,  4,  -3, -4, 0,  -3, 2,  3,  1,  4, 3,
                -1, 5,  -2, 0,  3,  15, -10, -10, 0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0, 0,
                0,  0,  0,  0,  -1, 2,  2,   2,   -2, 4,  -1, 1,  -3, -1, -1, -1, -2, 2,  0, 1});
}

TEST_F(QuantIntNTest, PerTensorScales) {
  const torch::Tensor t = torch::tensor({0.3f, -1.2f, 0.05f, 2.5f, -0.7f});
  // #1406: fp16(2.5/31) = 0.08062744140625, no floor.
  const IntQuantized a = quantize_per_tensor(t, int6_pr1406());
  EXPECT_EQ(a.scale.dim(), 0);
  EXPECT_EQ(a.scale.scalar_type(), torch::kFloat16);
  EXPECT_EQ(a.scale.to(torch::kFloat32).item<float>(), 0.08062744140625f);
  expect_codes(a.q, {4, -15, 1, 31, -9});
  // #461 int5: fp16(2.5/15) = 0.1666259765625.
  const IntQuantized b = quantize_per_tensor(t, int5_pr461());
  EXPECT_EQ(b.scale.to(torch::kFloat32).item<float>(), 0.1666259765625f);
  expect_codes(b.q, {2, -7, 0, 15, -4});
  // An all-zero tensor: #1406 falls back to a unit scale.
  const IntQuantized z = quantize_per_tensor(torch::zeros({3}), int6_pr1406());
  EXPECT_EQ(z.scale.to(torch::kFloat32).item<float>(), 1.0f);
  expect_codes(z.q, {0, 0, 0});
}

TEST_F(QuantIntNTest, CodesStayInRangeAndDequantizeWithinHalfAStep) {
  torch::manual_seed(11);
  // Heavy tails: some rows have large outliers, some are tiny.
  const torch::Tensor w = torch::randn({64, 96}) * torch::exp(torch::randn({64, 1}) * 2) *
                          (1 + 20 * (torch::rand({64, 96}) > 0.99).to(torch::kFloat32));
  for (const IntGrid& grid : {int6_pr1406(), int6_pr461(), int5_pr461()}) {
    SCOPED_TRACE(grid.describe());
    const IntQuantized q = quantize_rowmax(w, grid);
    EXPECT_GE(q.q.min().item<int>(), grid.qmin);
    EXPECT_LE(q.q.max().item<int>(), grid.qmax);
    // With the row max as clip nothing saturates (#1406's floor only makes s
    // larger), so every error is at most half a step.
    const torch::Tensor err = (w - dequantize_codes(q.q, q.scale)).abs();
    const torch::Tensor half_step = q.scale.to(torch::kFloat32).unsqueeze(1) * 0.5 * (1 + 1e-3);
    EXPECT_TRUE((err <= half_step).all().item<bool>());
  }
}

}  // namespace
}  // namespace pgolf
