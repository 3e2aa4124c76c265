// exp and tanh over float arrays with the fused kernels' vectorized
// functions (kernels/fast_math.h, which only the kernels library includes:
// its 32-byte vectors need the library's compile flags).
#pragma once

#include <cstdint>

namespace pgolf::kernels {

void exp_span(const float* x, float* out, int64_t n);
void tanh_span(const float* x, float* out, int64_t n);

}  // namespace pgolf::kernels
