// RoPE: partial rotary dims and the scripts' NTK-aware base (spec
// model-and-training §3.6.1).
#include <gtest/gtest.h>

#include "model/rotary.h"

namespace pgolf {
namespace {

TEST(Rotary, NtkBaseAtTrainingLengthMatchesSpec) {
  EXPECT_NEAR(rope_base_for(10000, 16, 1024, 2048), 22081.790, 1e-3);
  EXPECT_NEAR(rope_base_for(10000, 64, 1024, 2048), 20452.23, 1e-2);
  EXPECT_EQ(rope_base_for(10000, 16, 1024, 1024), 10000);  // T <= reference length
  EXPECT_EQ(rope_base_for(10000, 16, 0, 4096), 10000);     // NTK off
}

TEST(Rotary, FirstFrequenciesAtT2048) {
  Rotary rotary(16, 10000, 1024);
  auto [cos, sin] = rotary.tables(2048, torch::kCPU, torch::kFloat);
  ASSERT_EQ(cos.sizes(), (std::vector<int64_t>{1, 1, 2048, 8}));
  // At position 1 the angle is the frequency itself.
  auto freqs = torch::atan2(sin[0][0][1], cos[0][0][1]);
  EXPECT_NEAR(freqs[0].item<double>(), 1.0, 1e-6);
  EXPECT_NEAR(freqs[1].item<double>(), 0.286415, 1e-6);
  EXPECT_NEAR(freqs[2].item<double>(), 0.0820335, 1e-7);
  EXPECT_NEAR(freqs[3].item<double>(), 0.0234956, 1e-7);
  // Short sequences use the plain base: frequency 1 = 10000^(-2/16).
  Rotary short_rotary(16, 10000, 1024);
  auto [c2, s2] = short_rotary.tables(64, torch::kCPU, torch::kFloat);
  EXPECT_NEAR(torch::atan2(s2[0][0][1], c2[0][0][1])[1].item<double>(), std::pow(10000, -0.125),
              1e-6);
}

TEST(Rotary, PartialRotationPassesTheOtherDimsAndKeepsNorms) {
  Rotary rotary(16, 10000, 0);
  auto [cos, sin] = rotary.tables(10, torch::kCPU, torch::kFloat);
  auto x = torch::randn({2, 3, 10, 64});
  auto y = apply_rotary(x, cos, sin);
  EXPECT_TRUE(torch::equal(y.narrow(-1, 16, 48), x.narrow(-1, 16, 48)));
  EXPECT_TRUE(torch::allclose(y.narrow(-1, 0, 16).norm(2, -1), x.narrow(-1, 0, 16).norm(2, -1),
                              1e-5, 1e-5));
  // Position 0 is not rotated.
  EXPECT_TRUE(torch::allclose(y.select(2, 0), x.select(2, 0)));
  // The sign convention: (x1, x2) -> (x1 cos + x2 sin, -x1 sin + x2 cos).
  auto x1 = x.narrow(-1, 0, 8), x2 = x.narrow(-1, 8, 8);
  EXPECT_TRUE(torch::allclose(y.narrow(-1, 0, 8), x1 * cos + x2 * sin, 1e-6, 1e-6));
  EXPECT_TRUE(torch::allclose(y.narrow(-1, 8, 8), -x1 * sin + x2 * cos, 1e-6, 1e-6));
}

}  // namespace
}  // namespace pgolf
