#include "model/rotary.h"

#include <cmath>

#include "common/fast_kernels.h"

namespace pgolf {

double rope_base_for(double base, int64_t rope_dims, int64_t ntk_ref_len, int64_t seq_len) {
  if (ntk_ref_len <= 0 || seq_len <= ntk_ref_len) return base;
  const double scale = static_cast<double>(seq_len) / static_cast<double>(ntk_ref_len);
  return base * std::pow(scale, static_cast<double>(rope_dims) / (rope_dims - 2));
}

Rotary::Rotary(int64_t rope_dims, double base, int64_t ntk_ref_len)
    : rope_dims_(rope_dims), base_(base), ntk_ref_len_(ntk_ref_len) {}

std::pair<torch::Tensor, torch::Tensor> Rotary::tables(int64_t seq_len, torch::Device device,
                                                       torch::ScalarType dtype) {
  if (cos_.defined() && cached_len_ == seq_len && cached_dtype_ == dtype &&
      cached_device_ == device) {
    return {cos_, sin_};
  }
  // The cache outlives the call: build it as normal tensors even when the
  // first call comes from evaluation under InferenceMode, or training
  // afterwards could not save it for backward.
  c10::InferenceMode normal_tensors(/*enabled=*/false);
  torch::NoGradGuard no_grad;
  const double base = rope_base_for(base_, rope_dims_, ntk_ref_len_, seq_len);
  // The reference casts the whole module to bf16, its inv_freq buffer
  // included, so with the plain base under bf16 the angle table is built from
  // bf16 positions and frequencies. The NTK branch recomputes the frequencies
  // in fp32. Reproduce both; in fp32 everything is fp32.
  const bool bf16_buffer = dtype == torch::kBFloat16 && base == base_;
  auto exponents = torch::arange(0, rope_dims_, 2, torch::kFloat) / static_cast<double>(rope_dims_);
  auto inv_freq = 1.0 / torch::pow(torch::tensor(base, torch::kFloat), exponents);
  const auto table_dtype = bf16_buffer ? torch::kBFloat16 : torch::kFloat;
  inv_freq = inv_freq.to(device, table_dtype);
  auto t = torch::arange(seq_len, torch::TensorOptions().device(device).dtype(table_dtype));
  auto freqs = torch::outer(t, inv_freq);
  cos_ = freqs.cos().unsqueeze(0).unsqueeze(0).to(dtype);
  sin_ = freqs.sin().unsqueeze(0).unsqueeze(0).to(dtype);
  cached_len_ = seq_len;
  cached_dtype_ = dtype;
  cached_device_ = device;
  return {cos_, sin_};
}

torch::Tensor apply_rotary(const torch::Tensor& x, const torch::Tensor& cos,
                           const torch::Tensor& sin) {
  const FastKernels* fast = fast_kernels_for(x);
  if (fast && x.dim() >= 2 && cos.scalar_type() == x.scalar_type())
    return fast->rotary(x, cos, sin);
  const int64_t half = cos.size(-1);
  auto x1 = x.narrow(-1, 0, half);
  auto x2 = x.narrow(-1, half, half);
  auto rotated = torch::cat({x1 * cos + x2 * sin, x1 * (-sin) + x2 * cos}, -1);
  if (2 * half == x.size(-1)) return rotated;
  return torch::cat({rotated, x.narrow(-1, 2 * half, x.size(-1) - 2 * half)}, -1);
}

}  // namespace pgolf
