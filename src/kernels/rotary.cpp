// Rotate-half RoPE on the first 2h dims of each row, the rest passing through:
//   y = (x1 c + x2 s, -x1 s + x2 c, x_rest),   dx = (g1 c - g2 s, g1 s + g2 c, g_rest),
// with c, s the row's position's (h) entries of the tables. The plain
// composition (two narrows, four products, two sums, a negation, one or two
// concatenations) makes about ten passes each way.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/empty.h>
#include <torch/csrc/autograd/custom_function.h>

#include "kernels/fused.h"
#include "kernels/rows.h"

namespace pgolf::kernels {
namespace {

template <typename T>
struct Args {
  const Rows<const T>& in;  // x forward, g backward
  T* out;                   // contiguous (rows, width)
  const T* cos;             // (T, h)
  const T* sin;
  int64_t seq_len;
  int64_t half;
  T direction;  // +1 forward, -1 backward (the transposed rotation)
};

template <typename T>
PGOLF_ALWAYS_INLINE void rotate_rows(const Args<T>& a, int64_t begin, int64_t end) {
  const int64_t W = a.in.width, h = a.half;
  for (int64_t r = begin; r < end; ++r) {
    const T* x = a.in.row(r);
    T* y = a.out + r * W;
    const T* c = a.cos + (r % a.seq_len) * h;
    const T* s = a.sin + (r % a.seq_len) * h;
    const T d = a.direction;
#pragma omp simd
    for (int64_t i = 0; i < h; ++i) {
      const T sd = s[i] * d;
      y[i] = x[i] * c[i] + x[h + i] * sd;
      y[h + i] = x[i] * -sd + x[h + i] * c[i];
    }
    for (int64_t i = 2 * h; i < W; ++i) y[i] = x[i];
  }
}

PGOLF_CPU_CLONES void rotate_chunk(const Args<float>& a, int64_t begin, int64_t end) {
  rotate_rows(a, begin, end);
}
void rotate_chunk(const Args<double>& a, int64_t begin, int64_t end) { rotate_rows(a, begin, end); }

// x (..., T, W) rotated by the tables (T, h) forward (direction 1) or back (-1).
at::Tensor rotate(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                  double direction) {
  auto y = at::empty(x.sizes(), x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "pgolf_rotary", [&] {
    const Rows<const scalar_t> rows(x);
    const Args<scalar_t> args{rows,
                              y.data_ptr<scalar_t>(),
                              cos.data_ptr<scalar_t>(),
                              sin.data_ptr<scalar_t>(),
                              x.size(-2),
                              cos.size(-1),
                              static_cast<scalar_t>(direction)};
    at::parallel_for(0, rows.count, row_grain(rows.width),
                     [&](int64_t begin, int64_t end) { rotate_chunk(args, begin, end); });
  });
  return y;
}

struct RotaryFunction : torch::autograd::Function<RotaryFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            const at::Tensor& cos, const at::Tensor& sin) {
    ctx->save_for_backward({cos, sin});
    return rotate(x, cos, sin, 1.0);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    auto g = grads[0].stride(-1) == 1 ? grads[0] : grads[0].contiguous();
    return {rotate(g, saved[0], saved[1], -1.0), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  TORCH_CHECK(supports(x), "kernels::rotary: needs a CPU float/double tensor with stride-1 rows");
  TORCH_CHECK(x.dim() >= 2, "kernels::rotary: x must be (..., T, D), got ", x.sizes());
  const int64_t T = x.size(-2), h = cos.size(-1);
  TORCH_CHECK(cos.numel() == T * h && sin.numel() == T * h && 2 * h <= x.size(-1),
              "kernels::rotary: tables of ", cos.sizes(), " do not fit x of ", x.sizes());
  TORCH_CHECK(cos.scalar_type() == x.scalar_type() && sin.scalar_type() == x.scalar_type(),
              "kernels::rotary: tables must have x's dtype");
  const auto c = cos.detach().reshape({T, h}).contiguous();
  const auto s = sin.detach().reshape({T, h}).contiguous();
  if (at::GradMode::is_enabled() && x.requires_grad()) return RotaryFunction::apply(x, c, s);
  return rotate(x, c, s, 1.0);
}

}  // namespace pgolf::kernels
