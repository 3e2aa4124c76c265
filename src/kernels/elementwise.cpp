#include "kernels/elementwise.h"

#include "kernels/fast_math.h"
#include "kernels/rows.h"

namespace pgolf::kernels {
namespace {

template <typename Fn>
PGOLF_ALWAYS_INLINE void map_span(const float* x, float* out, int64_t n, Fn fn) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) store8(out + i, fn(load8(x + i)));
  for (; i < n; ++i) out[i] = fn(splat(x[i]))[0];
}

}  // namespace

PGOLF_CPU_CLONES void exp_span(const float* x, float* out, int64_t n) {
  map_span(x, out, n, [](f32x8 v) { return fast_exp(v); });
}

PGOLF_CPU_CLONES void tanh_span(const float* x, float* out, int64_t n) {
  map_span(x, out, n, [](f32x8 v) { return fast_tanh(v); });
}

}  // namespace pgolf::kernels
