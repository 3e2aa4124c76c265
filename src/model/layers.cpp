#include "model/layers.h"

#include <torch/nn/functional/linear.h>

#include <cmath>

#include "common/fast_kernels.h"

namespace pgolf {

torch::Tensor rms_norm(const torch::Tensor& x) {
  if (const FastKernels* fast = fast_kernels_for(x)) return fast->rms_norm(x);
  return at::rms_norm(x, {x.size(-1)}, /*weight=*/{}, /*eps=*/std::nullopt);
}

torch::Tensor blend(const torch::Tensor& a, const torch::Tensor& x, const torch::Tensor& b,
                    const torch::Tensor& y) {
  const FastKernels* fast = fast_kernels_for(x);
  if (fast && a.dim() == 1 && b.dim() == 1) return fast->mix(a, x, b, y);
  return a * x + b * y;
}

torch::Tensor add_scaled(const torch::Tensor& x, const torch::Tensor& s, const torch::Tensor& y) {
  const FastKernels* fast = fast_kernels_for(x);
  if (fast && s.dim() == 1) return fast->mix({}, x, s, y);
  return x + s * y;
}

torch::Tensor casted_linear(const torch::Tensor& x, const torch::Tensor& w) {
  return torch::nn::functional::linear(x, w.to(x.scalar_type()));
}

CastedLinearImpl::CastedLinearImpl(int64_t in_features, int64_t out_features, bool zero_init)
    : zero_init(zero_init) {
  weight = register_parameter("weight", torch::empty({out_features, in_features}));
  // nn.Linear's default init, kaiming_uniform(a=sqrt(5)), with the same
  // floating-point steps as PyTorch so a seeded generator gives the same draws.
  const double gain = std::sqrt(2.0 / (1.0 + 5.0));
  const double bound = std::sqrt(3.0) * (gain / std::sqrt(static_cast<double>(in_features)));
  torch::NoGradGuard no_grad;
  weight.uniform_(-bound, bound);
}

}  // namespace pgolf
