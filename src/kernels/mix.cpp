// The residual stream's per-channel blends: out = a * x + b * y over rows of
// width D, a and b (D) vectors, a optional (then 1, as in x + scale * y).
// Backward: dx = a g, dy = b g, da = sum over rows of g x, db = sum of g y.
// The plain composition is two or three passes forward and five or six
// backward (two products, two products and reductions for the vectors).
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/empty.h>
#include <torch/csrc/autograd/custom_function.h>

#include <vector>

#include "kernels/fused.h"
#include "kernels/rows.h"

namespace pgolf::kernels {
namespace {

// Rows per reduction chunk: the column sums of a chunk are added in chunk
// order, so the result does not depend on the thread count.
constexpr int64_t kChunkRows = 64;

template <typename T>
struct ForwardArgs {
  const T* a;  // (D) or nullptr for ones
  const T* x;  // (rows, D) contiguous
  const T* b;
  const T* y;
  T* out;
  int64_t D;
};

template <typename T>
PGOLF_ALWAYS_INLINE void forward_rows(const ForwardArgs<T>& p, int64_t begin, int64_t end) {
  const int64_t D = p.D;
  for (int64_t r = begin; r < end; ++r) {
    const T* x = p.x + r * D;
    const T* y = p.y + r * D;
    T* out = p.out + r * D;
    if (p.a) {
#pragma omp simd
      for (int64_t i = 0; i < D; ++i) out[i] = p.a[i] * x[i] + p.b[i] * y[i];
    } else {
#pragma omp simd
      for (int64_t i = 0; i < D; ++i) out[i] = x[i] + p.b[i] * y[i];
    }
  }
}

template <typename T>
struct BackwardArgs {
  const T* g;  // (rows, D) contiguous
  const T* a;  // (D) or nullptr
  const T* x;
  const T* b;
  const T* y;
  T* dx;  // nullptr when a is
  T* dy;
  T* da_chunks;  // (chunks, D) column sums of each chunk, or nullptr
  T* db_chunks;
  int64_t rows;
  int64_t D;
};

template <typename T>
PGOLF_ALWAYS_INLINE void backward_chunks(const BackwardArgs<T>& p, int64_t begin, int64_t end) {
  const int64_t D = p.D;
  for (int64_t c = begin; c < end; ++c) {
    T* da = p.da_chunks ? p.da_chunks + c * D : nullptr;
    T* db = p.db_chunks + c * D;
    for (int64_t i = 0; i < D; ++i) db[i] = 0;
    if (da) {
      for (int64_t i = 0; i < D; ++i) da[i] = 0;
    }
    const int64_t last = std::min(p.rows, (c + 1) * kChunkRows);
    for (int64_t r = c * kChunkRows; r < last; ++r) {
      const T* g = p.g + r * D;
      const T* y = p.y + r * D;
      T* dy = p.dy + r * D;
#pragma omp simd
      for (int64_t i = 0; i < D; ++i) {
        dy[i] = p.b[i] * g[i];
        db[i] += g[i] * y[i];
      }
      if (da) {
        const T* x = p.x + r * D;
        T* dx = p.dx + r * D;
#pragma omp simd
        for (int64_t i = 0; i < D; ++i) {
          dx[i] = p.a[i] * g[i];
          da[i] += g[i] * x[i];
        }
      }
    }
  }
}

PGOLF_CPU_CLONES void forward_chunk(const ForwardArgs<float>& p, int64_t begin, int64_t end) {
  forward_rows(p, begin, end);
}
void forward_chunk(const ForwardArgs<double>& p, int64_t begin, int64_t end) {
  forward_rows(p, begin, end);
}
PGOLF_CPU_CLONES void backward_chunk(const BackwardArgs<float>& p, int64_t begin, int64_t end) {
  backward_chunks(p, begin, end);
}
void backward_chunk(const BackwardArgs<double>& p, int64_t begin, int64_t end) {
  backward_chunks(p, begin, end);
}

template <typename T>
const T* data_or_null(const at::Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}

at::Tensor mix_forward(const at::Tensor& a, const at::Tensor& x, const at::Tensor& b,
                       const at::Tensor& y) {
  auto out = at::empty(x.sizes(), x.options());
  const int64_t D = x.size(-1);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "pgolf_mix", [&] {
    const ForwardArgs<scalar_t> args{data_or_null<scalar_t>(a), x.data_ptr<scalar_t>(),
                                     b.data_ptr<scalar_t>(),    y.data_ptr<scalar_t>(),
                                     out.data_ptr<scalar_t>(),  D};
    at::parallel_for(0, x.numel() / D, row_grain(D),
                     [&](int64_t begin, int64_t end) { forward_chunk(args, begin, end); });
  });
  return out;
}

// The chunks' column sums, added in chunk order in double.
at::Tensor sum_chunks(const at::Tensor& chunks) { return chunks.to(at::kDouble).sum(0); }

// Returns (da, dx, db, dy); without a (x + b * y) da is undefined, dx is g
// and x may be undefined.
std::vector<at::Tensor> mix_backward(at::Tensor g, const at::Tensor& a, const at::Tensor& x,
                                     const at::Tensor& b, const at::Tensor& y) {
  g = g.contiguous();
  const int64_t D = y.size(-1), rows = y.numel() / D;
  const int64_t chunks = (rows + kChunkRows - 1) / kChunkRows;
  auto dy = at::empty(y.sizes(), y.options());
  auto db_chunks = at::empty({chunks, D}, y.options());
  at::Tensor dx, da_chunks;
  if (a.defined()) {
    dx = at::empty(x.sizes(), x.options());
    da_chunks = at::empty({chunks, D}, x.options());
  }
  AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "pgolf_mix_backward", [&] {
    const BackwardArgs<scalar_t> args{
        g.data_ptr<scalar_t>(),
        data_or_null<scalar_t>(a),
        data_or_null<scalar_t>(x),
        b.data_ptr<scalar_t>(),
        y.data_ptr<scalar_t>(),
        dx.defined() ? dx.data_ptr<scalar_t>() : nullptr,
        dy.data_ptr<scalar_t>(),
        da_chunks.defined() ? da_chunks.data_ptr<scalar_t>() : nullptr,
        db_chunks.data_ptr<scalar_t>(),
        rows,
        D};
    at::parallel_for(0, chunks, 1,
                     [&](int64_t begin, int64_t end) { backward_chunk(args, begin, end); });
  });
  at::Tensor da;
  if (a.defined()) da = sum_chunks(da_chunks).to(a.scalar_type());
  return {da, a.defined() ? dx : g, sum_chunks(db_chunks).to(b.scalar_type()), dy};
}

// a * x + b * y. (Two functions: autograd's inputs cannot be undefined.)
struct BlendFunction : torch::autograd::Function<BlendFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& a,
                            const at::Tensor& x, const at::Tensor& b, const at::Tensor& y) {
    ctx->save_for_backward({a, x, b, y});
    return mix_forward(a, x, b, y);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto s = ctx->get_saved_variables();
    return mix_backward(grads[0], s[0], s[1], s[2], s[3]);
  }
};

// x + b * y.
struct ScaledAddFunction : torch::autograd::Function<ScaledAddFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            const at::Tensor& b, const at::Tensor& y) {
    ctx->save_for_backward({b, y});
    return mix_forward({}, x, b, y);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto s = ctx->get_saved_variables();
    auto g = mix_backward(grads[0], {}, {}, s[0], s[1]);
    return {g[1], g[2], g[3]};
  }
};

}  // namespace

at::Tensor mix(const at::Tensor& a, const at::Tensor& x, const at::Tensor& b, const at::Tensor& y) {
  TORCH_CHECK(supports(x) && x.sizes() == y.sizes() && x.scalar_type() == y.scalar_type(),
              "kernels::mix: x and y must be CPU float/double tensors of one shape, got ",
              x.sizes(), " and ", y.sizes());
  const int64_t D = x.size(-1);
  for (const auto* v : {&a, &b}) {
    TORCH_CHECK(!v->defined() || (v->dim() == 1 && v->size(0) == D &&
                                  v->scalar_type() == x.scalar_type() && v->device() == x.device()),
                "kernels::mix: a and b must be (", D, ") vectors of x's dtype");
  }
  TORCH_CHECK(b.defined(), "kernels::mix: b is required");
  const auto ac = a.defined() ? a.contiguous() : a;
  const auto bc = b.contiguous(), xc = x.contiguous(), yc = y.contiguous();
  const bool any_grad = x.requires_grad() || y.requires_grad() || b.requires_grad() ||
                        (a.defined() && a.requires_grad());
  if (at::GradMode::is_enabled() && any_grad) {
    return a.defined() ? BlendFunction::apply(ac, xc, bc, yc)
                       : ScaledAddFunction::apply(xc, bc, yc);
  }
  return mix_forward(ac, xc, bc, yc);
}

}  // namespace pgolf::kernels
