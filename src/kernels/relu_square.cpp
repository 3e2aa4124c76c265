// The MLP activation a(x)^2 with a = leaky_relu(x, slope) (slope 0: relu).
// Backward: dx = g * 2 a(x) * a'(x). The plain composition is two passes
// forward (activation, square) and three backward (pow's two, threshold).
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
  const T* x;
  const T* g;  // backward only
  T* out;
  T slope;
};

template <typename T>
PGOLF_ALWAYS_INLINE void forward_span(const Args<T>& a, int64_t begin, int64_t end) {
  const T* x = a.x;
  T* out = a.out;
  const T slope = a.slope;
#pragma omp simd
  for (int64_t i = begin; i < end; ++i) {
    const T v = x[i];
    const T negative = slope * v;
    const T activated = v > 0 ? v : negative;
    out[i] = activated * activated;
  }
}

template <typename T>
PGOLF_ALWAYS_INLINE void backward_span(const Args<T>& a, int64_t begin, int64_t end) {
  const T* x = a.x;
  const T* g = a.g;
  T* out = a.out;
  const T negative_factor = T(2) * a.slope * a.slope;
#pragma omp simd
  for (int64_t i = begin; i < end; ++i) {
    // 2 a(x) a'(x) = 2x for x > 0, 2 slope^2 x otherwise.
    const T v = x[i];
    const T positive = T(2) * v;
    const T negative = negative_factor * v;
    out[i] = g[i] * (v > 0 ? positive : negative);
  }
}

PGOLF_CPU_CLONES void forward_chunk(const Args<float>& a, int64_t begin, int64_t end) {
  forward_span(a, begin, end);
}
void forward_chunk(const Args<double>& a, int64_t begin, int64_t end) {
  forward_span(a, begin, end);
}
PGOLF_CPU_CLONES void backward_chunk(const Args<float>& a, int64_t begin, int64_t end) {
  backward_span(a, begin, end);
}
void backward_chunk(const Args<double>& a, int64_t begin, int64_t end) {
  backward_span(a, begin, end);
}

constexpr int64_t kGrain = 1 << 16;

at::Tensor relu_square_forward(const at::Tensor& x_in, double slope) {
  const auto x = x_in.contiguous();
  auto y = at::empty(x.sizes(), x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "pgolf_relu_square", [&] {
    const Args<scalar_t> args{x.data_ptr<scalar_t>(), nullptr, y.data_ptr<scalar_t>(),
                              static_cast<scalar_t>(slope)};
    at::parallel_for(0, x.numel(), kGrain,
                     [&](int64_t begin, int64_t end) { forward_chunk(args, begin, end); });
  });
  return y;
}

at::Tensor relu_square_backward(const at::Tensor& g_in, const at::Tensor& x, double slope) {
  const auto g = g_in.contiguous();
  auto dx = at::empty(x.sizes(), x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "pgolf_relu_square_backward", [&] {
    const Args<scalar_t> args{x.data_ptr<scalar_t>(), g.data_ptr<scalar_t>(),
                              dx.data_ptr<scalar_t>(), static_cast<scalar_t>(slope)};
    at::parallel_for(0, x.numel(), kGrain,
                     [&](int64_t begin, int64_t end) { backward_chunk(args, begin, end); });
  });
  return dx;
}

struct ReluSquareFunction : torch::autograd::Function<ReluSquareFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            double slope) {
    const auto xc = x.contiguous();
    ctx->save_for_backward({xc});
    ctx->saved_data["slope"] = slope;
    return relu_square_forward(xc, slope);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto x = ctx->get_saved_variables()[0];
    return {relu_square_backward(grads[0], x, ctx->saved_data["slope"].toDouble()), at::Tensor()};
  }
};

}  // namespace

at::Tensor relu_square(const at::Tensor& x, double slope) {
  TORCH_CHECK(supports(x), "kernels::relu_square: needs a CPU float/double tensor");
  if (at::GradMode::is_enabled() && x.requires_grad()) return ReluSquareFunction::apply(x, slope);
  return relu_square_forward(x, slope);
}

}  // namespace pgolf::kernels
