// Tests for quant/clip_search (GPTQ-lite): the per-row variants against the
// seeds' functions on small matrices, tie-breaking, and the property that
// matters: the chosen clip is never worse than no clip (the row max).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <vector>

#include "quant/clip_search.h"
#include "quant/intn.h"
#include "tests/quant/single_thread.h"

namespace pgolf {
namespace {

class QuantClipSearchTest : public testing::SingleThreadTest {};

std::vector<int> codes_of(const torch::Tensor& q) {
  const torch::Tensor flat = q.flatten().to(torch::kInt32).contiguous();
  return {flat.data_ptr<int>(), flat.data_ptr<int>() + flat.numel()};
}

std::vector<float> scales_of(const torch::Tensor& s) {
  const torch::Tensor flat = s.flatten().to(torch::kFloat32).contiguous();
  return {flat.data_ptr<float>(), flat.data_ptr<float>() + flat.numel()};
}

// The first two rows of test_intn's matrix: row 1 has an outlier.
torch::Tensor two_rows() {
  return torch::tensor({-1.12583983f,  -1.1523602f,   -0.250578582f, -0.433878809f, 0.848710358f,
                        0.692009151f,  -0.31601277f,  -2.11521935f,  0.322274923f,  -1.26333475f,
                        0.349983186f,  0.30813393f,   0.119841509f,  1.2376579f,    1.11677718f,
                        -0.247278154f, -1.35265374f,  -1.6959312f,   0.566650629f,  4.f,
                        0.598839462f,  -1.55509508f,  -0.34136039f,  1.85300612f,   0.750189483f,
                        -0.585497558f, -0.173396751f, 0.183477938f,  1.38936615f,   1.58633423f,
                        0.946298361f,  -0.843676746f})
      .reshape({2, 16});
}

TEST_F(QuantClipSearchTest, Candidates) {
  EXPECT_EQ(clip_candidates_pr1406(), (std::vector<double>{0.999, 0.9995, 0.9999, 0.99999, 1.0}));
  EXPECT_EQ(clip_candidates_pr461(), (std::vector<double>{0.95, 0.975, 0.99, 0.995, 1.0}));
}

TEST_F(QuantClipSearchTest, Pr562PerRowMatchesReference) {
  // Row 0 picks an interpolated quantile below its max (scale 0.06781 < 0.06824).
  const IntQuantized q6 = clip_search_per_row(two_rows(), int6_pr461(), clip_candidates_pr1406(),
                                              ClipQuantile::kInterpolated);
  EXPECT_EQ(scales_of(q6.scale), (std::vector<float>{0.0678100586f, 0.12902832f}));
  EXPECT_EQ(codes_of(q6.q),
            (std::vector<int>{-17, -17, -4, -6, 13, 10,  -5, -31, 5, -19, 5,  5, 2,  18, 16, -4,
                              -10, -13, 4,  31, 5,  -12, -3, 14,  6, -5,  -1, 1, 11, 12, 7,  -7}));
  const IntQuantized q5 = clip_search_per_row(two_rows(), int5_pr461(), clip_candidates_pr1406(),
                                              ClipQuantile::kInterpolated);
  EXPECT_EQ(scales_of(q5.scale), (std::vector<float>{0.140869141f, 0.266601562f}));
  EXPECT_EQ(codes_of(q5.q),
            (std::vector<int>{-8, -8, -2, -3, 6, 5,  -2, -15, 2, -9, 2,  2, 1, 9, 8, -2,
                              -5, -6, 2,  15, 2, -6, -1, 7,   3, -2, -1, 1, 5, 6, 4, -3}));
}

TEST_F(QuantClipSearchTest, Pr461GptqLiteSortedIndexMatchesReference) {
  // 21 columns: every p < 1 picks sorted index 19, the second largest |w|.
  // Row 0 lies on a 0.1 grid up to 1.5 plus an outlier 1.6: clipping at 1.5
  // (s = fp16(0.1)) beats the row max (s = fp16(1.6/15) = 0.10669). Row 1 has
  // no outlier and keeps its max.
  std::vector<float> values;
  for (const int k : {-14, -11, -9, -7, -6, -4, -3, -2, -1, 0, 1, 2, 3, 5, 6, 8, 9, 10, 12, 15}) {
    values.push_back(static_cast<float>(0.1 * k));
  }
  values.push_back(1.6f);
  for (int k = -10; k <= 10; ++k) values.push_back(static_cast<float>(0.05 * k));
  const torch::Tensor w = torch::tensor(values).reshape({2, 21});
  const IntQuantized q =
      clip_search_per_row(w, int5_pr461(), clip_candidates_pr461(), ClipQuantile::kSortedIndex);
  EXPECT_EQ(scales_of(q.scale), (std::vector<float>{0.0999755859f, 0.0333251953f}));
  EXPECT_EQ(scales_of(quantize_rowmax(w, int5_pr461()).scale),
            (std::vector<float>{0.106689453f, 0.0333251953f}));
  EXPECT_EQ(codes_of(q.q),
            (std::vector<int>{-14, -11, -9, -7, -6, -4, -3, -2,  -1,  0,   1,   2,  3,  5,
                              6,   8,   9,  10, 12, 15, 15, -15, -14, -12, -11, -9, -8, -6,
                              -5,  -3,  -2, 0,  2,  3,  5,  6,   8,   9,   11,  12, 14, 15}));
}

TEST_F(QuantClipSearchTest, TiesKeepTheEarlierCandidate) {
  // Every |w| equal: every quantile is the same clip, so all candidates tie.
  const torch::Tensor w = torch::tensor({0.5f, -0.5f, 0.5f, -0.5f, 0.5f, 0.5f}).reshape({2, 3});
  int chosen = -1;
  clip_search_per_matrix(w, int6_pr1406(), clip_candidates_pr1406(), &chosen);
  EXPECT_EQ(chosen, 0);
}

TEST_F(QuantClipSearchTest, ChosenClipIsNeverWorseThanNoClip) {
  for (const int seed : {1, 2}) {
    torch::manual_seed(seed);
    // Heavy-tailed rows of different widths, as trained weights are.
    const torch::Tensor w = torch::randn({48, 160}) * torch::exp(torch::randn({48, 1})) *
                            (1 + 8 * (torch::rand({48, 160}) > 0.995).to(torch::kFloat32));
    for (const IntGrid& grid : {int6_pr1406(), int6_pr461(), int5_pr461()}) {
      SCOPED_TRACE(grid.describe() + " seed " + std::to_string(seed));
      const IntQuantized none = quantize_rowmax(w, grid);
      const auto row_mse = [&](const IntQuantized& q) {
        return (w - dequantize_codes(q.q, q.scale)).pow(2).mean(1);
      };
      // Per matrix: p = 1.0 (the row max) is a candidate, so never worse.
      const IntQuantized matrix = clip_search_per_matrix(w, grid, clip_candidates_pr1406());
      EXPECT_LE(reconstruction_mse(w, matrix), reconstruction_mse(w, none));
      // Per row: never worse in any row, for both candidate lists.
      const IntQuantized rows =
          clip_search_per_row(w, grid, clip_candidates_pr1406(), ClipQuantile::kInterpolated);
      EXPECT_TRUE((row_mse(rows) <= row_mse(none)).all().item<bool>());
      const IntQuantized lite =
          clip_search_per_row(w, grid, clip_candidates_pr461(), ClipQuantile::kSortedIndex);
      EXPECT_TRUE((row_mse(lite) <= row_mse(none)).all().item<bool>());
      EXPECT_GE(rows.q.min().item<int>(), grid.qmin);
      EXPECT_LE(rows.q.max().item<int>(), grid.qmax);
    }
  }
}

}  // namespace
}  // namespace pgolf
