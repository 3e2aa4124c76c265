// The sync-free gradient clip scales exactly as LibTorch's clip_grad_norm_.
#include <gtest/gtest.h>
#include <torch/nn/utils/clip_grad.h>

#include "optim/grad_clip.h"

namespace pgolf {
namespace {

std::vector<torch::Tensor> params_with_grads(double grad_scale) {
  torch::manual_seed(11);
  std::vector<torch::Tensor> ps;
  for (const auto& shape : std::vector<std::vector<int64_t>>{{17, 5}, {33}, {4, 4, 3}}) {
    auto p = torch::randn(shape).requires_grad_(true);
    p.mutable_grad() = grad_scale * torch::randn(shape);
    ps.push_back(p);
  }
  ps.push_back(torch::randn({3}).requires_grad_(true));  // no gradient: skipped
  return ps;
}

TEST(GradClip, BitIdenticalToLibTorchWhenClippingAndWhenNot) {
  for (double grad_scale : {10.0, 1e-3}) {  // norm far above / below max_norm
    auto ours = params_with_grads(grad_scale);
    auto theirs = params_with_grads(grad_scale);
    const auto norm = clip_grad_norm_no_sync(ours, 0.3);
    const double ref_norm = torch::nn::utils::clip_grad_norm_(theirs, 0.3);
    EXPECT_EQ(norm.item<double>(), ref_norm);
    for (size_t i = 0; i + 1 < ours.size(); ++i) {
      EXPECT_TRUE(torch::equal(ours[i].grad(), theirs[i].grad())) << i << " scale " << grad_scale;
    }
    EXPECT_FALSE(ours.back().grad().defined());
  }
}

TEST(GradClip, NoGradientsIsANoOp) {
  std::vector<torch::Tensor> ps = {torch::randn({2}).requires_grad_(true)};
  EXPECT_FALSE(clip_grad_norm_no_sync(ps, 1.0).defined());
}

}  // namespace
}  // namespace pgolf
