// What the kernel tests check of every fused kernel: its values and input
// gradients against the plain ATen composition (float, within rounding), and
// its hand-written backward against central finite differences (double).
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "kernels/fused.h"

namespace pgolf::kernels::checks {

using Fn = std::function<torch::Tensor(const torch::Tensor&)>;

inline double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

// Forward values and input gradients (for a random upstream gradient) of the
// fused and the plain function on the same float input.
inline void expect_matches_plain(const torch::Tensor& input, const Fn& fused, const Fn& plain,
                                 double tol) {
  auto x1 = input.detach().clone().requires_grad_(true);
  auto x2 = input.detach().clone().requires_grad_(true);
  const auto y1 = fused(x1);
  torch::Tensor y2;
  {
    FusedKernelsScope off(false);
    y2 = plain(x2);
  }
  ASSERT_EQ(y1.sizes(), y2.sizes());
  const double scale = std::max(1.0, y2.abs().max().item<double>());
  EXPECT_LE(max_abs_diff(y1, y2), tol * scale);
  const auto g = torch::randn_like(y2);
  (y1 * g).sum().backward();
  {
    FusedKernelsScope off(false);
    (y2 * g).sum().backward();
  }
  const double gscale = std::max(1.0, x2.grad().abs().max().item<double>());
  EXPECT_LE(max_abs_diff(x1.grad(), x2.grad()), tol * gscale);
}

// Central finite differences of sum(w * f(x)) at every element of a small
// double input against the hand-written backward.
inline void expect_gradient_matches_finite_differences(const torch::Tensor& input, const Fn& fn) {
  auto x = input.to(torch::kDouble).contiguous().detach().clone().requires_grad_(true);
  const auto w = torch::randn_like(fn(x).detach());
  (fn(x) * w).sum().backward();
  const auto grad = x.grad().reshape({-1});
  auto flat = x.detach().reshape({-1});  // shares x's storage (x is contiguous)
  const double eps = 1e-6;
  torch::NoGradGuard no_grad;
  for (int64_t i = 0; i < flat.numel(); ++i) {
    const double original = flat[i].item<double>();
    flat[i] = original + eps;
    const double up = (fn(x) * w).sum().item<double>();
    flat[i] = original - eps;
    const double down = (fn(x) * w).sum().item<double>();
    flat[i] = original;
    const double fd = (up - down) / (2 * eps);
    EXPECT_NEAR(grad[i].item<double>(), fd, 1e-7 + 1e-6 * std::abs(fd)) << "element " << i;
  }
}

}  // namespace pgolf::kernels::checks
