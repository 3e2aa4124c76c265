// The fused kernels' vectorized exp and tanh (kernels/fast_math.h, through
// kernels/elementwise.h) against libm, lane by lane and in the scalar tail.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/elementwise.h"

namespace pgolf::kernels {
namespace {

std::vector<float> grid(float from, float to, float step) {
  std::vector<float> x;
  for (float v = from; v <= to; v += step) x.push_back(v);
  x.push_back(from * 0.5f);  // an odd count: the last values take the scalar tail
  return x;
}

std::vector<float> apply(void (*span)(const float*, float*, int64_t), const std::vector<float>& x) {
  std::vector<float> out(x.size());
  span(x.data(), out.data(), static_cast<int64_t>(x.size()));
  return out;
}

TEST(FastMath, ExpIsWithinAFewUlpOfLibm) {
  const auto x = grid(-87.0f, 88.0f, 0.0037f);
  const auto e = apply(exp_span, x);
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double exact = std::exp(static_cast<double>(x[i]));
    worst = std::max(worst, std::abs(e[i] - exact) / exact);
  }
  EXPECT_LT(worst, 3e-7);  // 2.5 ulp of float
  const float inf = std::numeric_limits<float>::infinity();
  const auto edges = apply(exp_span, {0.0f, -100.0f, -inf, 1.0f, -1.0f, 2.0f, 3.0f, 0.5f, 88.0f});
  EXPECT_EQ(edges[0], 1.0f);
  EXPECT_EQ(edges[1], 0.0f);
  EXPECT_EQ(edges[2], 0.0f);
  EXPECT_NEAR(edges[8], std::exp(88.0), 3e-7 * std::exp(88.0));  // the tail lane
}

TEST(FastMath, TanhIsWithinAFewUlpOfLibmAndSaturates) {
  const auto x = grid(-20.0f, 20.0f, 0.00071f);
  const auto t = apply(tanh_span, x);
  double worst_abs = 0, worst_rel = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double exact = std::tanh(static_cast<double>(x[i]));
    const double err = std::abs(t[i] - exact);
    worst_abs = std::max(worst_abs, err);
    if (std::abs(x[i]) > 1e-3f) worst_rel = std::max(worst_rel, err / std::abs(exact));
  }
  EXPECT_LT(worst_abs, 2e-7);
  EXPECT_LT(worst_rel, 4e-7);
  const std::vector<float> tiny{1e-30f, 1e-7f, -3e-5f, 0.3f, -0.62f};  // tanh(x) ~ x
  const auto tt = apply(tanh_span, tiny);
  for (size_t i = 0; i < tiny.size(); ++i) {
    EXPECT_NEAR(tt[i], std::tanh(static_cast<double>(tiny[i])), 2e-7 * std::abs(tiny[i]))
        << tiny[i];
  }
  const float inf = std::numeric_limits<float>::infinity();
  const auto edges = apply(tanh_span, {0.0f, 60.0f, -1e4f, inf, -inf, 0.0f, 0.0f, 0.0f, 60.0f});
  EXPECT_EQ(edges[0], 0.0f);
  EXPECT_EQ(edges[1], 1.0f);
  EXPECT_EQ(edges[2], -1.0f);
  EXPECT_EQ(edges[3], 1.0f);
  EXPECT_EQ(edges[4], -1.0f);
  EXPECT_EQ(edges[8], 1.0f);  // the tail lane
}

}  // namespace
}  // namespace pgolf::kernels
