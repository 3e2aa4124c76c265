// RMSNorm without weight: y = x * s, s = 1 / sqrt(mean(x^2) + eps) per row.
// Backward: dx = s * (g - y * mean(g * y)) = s * g - x * (s^3 / D) * sum(g * x).
// The plain composition takes five passes forward and about ten backward.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/empty.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>
#include <limits>

#include "kernels/fused.h"
#include "kernels/rows.h"

namespace pgolf::kernels {
namespace {

template <typename T>
struct ForwardArgs {
  const Rows<const T>& x;
  T* y;     // contiguous (count, width)
  T* rstd;  // (count)
  T eps;
};

template <typename T>
PGOLF_ALWAYS_INLINE void forward_rows(const ForwardArgs<T>& a, int64_t begin, int64_t end) {
  const int64_t D = a.x.width;
  for (int64_t r = begin; r < end; ++r) {
    const T* x = a.x.row(r);
    T* y = a.y + r * D;
    T sum_sq = 0;
#pragma omp simd reduction(+ : sum_sq)
    for (int64_t i = 0; i < D; ++i) sum_sq += x[i] * x[i];
    const T s = T(1) / std::sqrt(sum_sq / static_cast<T>(D) + a.eps);
    a.rstd[r] = s;
#pragma omp simd
    for (int64_t i = 0; i < D; ++i) y[i] = x[i] * s;
  }
}

PGOLF_CPU_CLONES void forward_chunk(const ForwardArgs<float>& a, int64_t begin, int64_t end) {
  forward_rows(a, begin, end);
}
void forward_chunk(const ForwardArgs<double>& a, int64_t begin, int64_t end) {
  forward_rows(a, begin, end);
}

template <typename T>
struct BackwardArgs {
  const Rows<const T>& g;
  const Rows<const T>& x;
  const T* rstd;
  T* dx;  // contiguous (count, width)
};

template <typename T>
PGOLF_ALWAYS_INLINE void backward_rows(const BackwardArgs<T>& a, int64_t begin, int64_t end) {
  const int64_t D = a.x.width;
  for (int64_t r = begin; r < end; ++r) {
    const T* g = a.g.row(r);
    const T* x = a.x.row(r);
    T* dx = a.dx + r * D;
    T dot = 0;
#pragma omp simd reduction(+ : dot)
    for (int64_t i = 0; i < D; ++i) dot += g[i] * x[i];
    const T s = a.rstd[r];
    const T c = s * s * s * dot / static_cast<T>(D);
#pragma omp simd
    for (int64_t i = 0; i < D; ++i) dx[i] = s * g[i] - c * x[i];
  }
}

PGOLF_CPU_CLONES void backward_chunk(const BackwardArgs<float>& a, int64_t begin, int64_t end) {
  backward_rows(a, begin, end);
}
void backward_chunk(const BackwardArgs<double>& a, int64_t begin, int64_t end) {
  backward_rows(a, begin, end);
}

// Returns (y, rstd); y contiguous with x's shape, rstd (rows).
std::pair<at::Tensor, at::Tensor> rms_norm_forward(const at::Tensor& x) {
  auto y = at::empty(x.sizes(), x.options());
  auto rstd = at::empty({x.numel() / x.size(-1)}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "pgolf_rms_norm", [&] {
    const Rows<const scalar_t> rows(x);
    const ForwardArgs<scalar_t> args{rows, y.data_ptr<scalar_t>(), rstd.data_ptr<scalar_t>(),
                                     std::numeric_limits<scalar_t>::epsilon()};
    at::parallel_for(0, rows.count, row_grain(rows.width),
                     [&](int64_t begin, int64_t end) { forward_chunk(args, begin, end); });
  });
  return {y, rstd};
}

at::Tensor rms_norm_backward(at::Tensor g, const at::Tensor& x, const at::Tensor& rstd) {
  if (g.stride(-1) != 1) g = g.contiguous();
  auto dx = at::empty(x.sizes(), x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "pgolf_rms_norm_backward", [&] {
    const Rows<const scalar_t> g_rows(g), x_rows(x);
    const BackwardArgs<scalar_t> args{g_rows, x_rows, rstd.data_ptr<scalar_t>(),
                                      dx.data_ptr<scalar_t>()};
    at::parallel_for(0, x_rows.count, row_grain(x_rows.width),
                     [&](int64_t begin, int64_t end) { backward_chunk(args, begin, end); });
  });
  return dx;
}

struct RmsNormFunction : torch::autograd::Function<RmsNormFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x) {
    auto [y, rstd] = rms_norm_forward(x);
    ctx->save_for_backward({x, rstd});
    return y;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    return {rms_norm_backward(grads[0], saved[0], saved[1])};
  }
};

}  // namespace

at::Tensor rms_norm(const at::Tensor& x) {
  TORCH_CHECK(supports(x), "kernels::rms_norm: needs a CPU float/double tensor with stride-1 rows");
  if (at::GradMode::is_enabled() && x.requires_grad()) return RmsNormFunction::apply(x);
  return rms_norm_forward(x).first;
}

}  // namespace pgolf::kernels
