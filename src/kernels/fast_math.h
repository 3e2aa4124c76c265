// exp and tanh for the fused kernels' inner loops, on 8 floats at a time.
// libm's expf/tanhf are scalar calls, and GCC does not vectorize a loop
// around branch-free scalar versions either (it threads the clamps into
// branches), so these are written with GCC's vector extensions: AVX2 code in
// the kernels' x86-64-v3 clones, pairs of SSE2 operations in the baseline
// ones. float: Cephes' expf and tanhf polynomials (a few ulp; tests bound the
// error against libm). double: libm, for the gradient checks.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace pgolf::kernels {

typedef float f32x8 __attribute__((vector_size(32)));
typedef int32_t i32x8 __attribute__((vector_size(32)));

inline constexpr int64_t kLanes = 8;

inline f32x8 splat(float v) { return f32x8{v, v, v, v, v, v, v, v}; }
inline f32x8 load8(const float* p) {
  f32x8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store8(float* p, f32x8 v) { std::memcpy(p, &v, sizeof v); }
inline f32x8 min8(f32x8 a, f32x8 b) { return a < b ? a : b; }
inline f32x8 max8(f32x8 a, f32x8 b) { return a > b ? a : b; }
inline float horizontal_max(f32x8 v) {
  float m = v[0];
  for (int i = 1; i < kLanes; ++i) m = v[i] > m ? v[i] : m;
  return m;
}
inline float horizontal_sum(f32x8 v) {
  return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}

inline f32x8 fast_exp(f32x8 x) {
  // e^x = 2^n e^g with n = floor(x / ln 2 + 1/2), |g| <= ln(2) / 2.
  const f32x8 clamped = min8(max8(x, splat(-87.0f)), splat(88.0f));
  const f32x8 t = clamped * 1.44269504088896341f + 0.5f;
  const i32x8 truncated = __builtin_convertvector(t, i32x8);                    // toward zero ...
  const i32x8 n = truncated + (__builtin_convertvector(truncated, f32x8) > t);  // ... to the floor
  const f32x8 fn = __builtin_convertvector(n, f32x8);
  f32x8 g = clamped - fn * 0.693359375f;  // ln 2 in two parts, the first exact
  g = g - fn * -2.12194440e-4f;
  f32x8 p = splat(1.9875691500e-4f);
  p = p * g + 1.3981999507e-3f;
  p = p * g + 8.3334519073e-3f;
  p = p * g + 4.1665795894e-2f;
  p = p * g + 1.6666665459e-1f;
  p = p * g + 5.0000001201e-1f;
  const f32x8 eg = p * (g * g) + g + 1.0f;
  const i32x8 bits = (n + 127) << 23;  // 2^n
  f32x8 scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return x < splat(-87.0f) ? splat(0.0f) : eg * scale;
}

inline f32x8 fast_tanh(f32x8 x) {
  // Small |x|: Cephes' odd polynomial. Otherwise 1 - 2 / (e^{2|x|} + 1),
  // which reaches 1 once e^{2|x|} outgrows float precision.
  i32x8 bits;
  std::memcpy(&bits, &x, sizeof bits);
  const i32x8 sign = bits & static_cast<int32_t>(0x80000000u);
  const i32x8 abs_bits = bits & 0x7fffffff;
  f32x8 ax;
  std::memcpy(&ax, &abs_bits, sizeof ax);
  const f32x8 z = x * x;
  f32x8 p = splat(-5.70498872745e-3f);
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  const f32x8 small = p * z * x + x;
  const f32x8 large = 1.0f - 2.0f / (fast_exp(2.0f * min8(ax, splat(44.0f))) + 1.0f);
  i32x8 large_bits;
  std::memcpy(&large_bits, &large, sizeof large_bits);
  large_bits |= sign;
  f32x8 signed_large;
  std::memcpy(&signed_large, &large_bits, sizeof signed_large);
  return ax < splat(0.625f) ? small : signed_large;
}

// One float: through the vector code, so a row's tail rounds like its body.
// (Only the kernels library includes this header: -Wno-psabi there silences
// GCC's note that 32-byte vectors passed by value have another ABI without
// AVX; these functions are inline and never called across the two.)
inline float fast_exp(float x) { return fast_exp(splat(x))[0]; }
inline float fast_tanh(float x) { return fast_tanh(splat(x))[0]; }

inline double fast_exp(double x) { return std::exp(x); }
inline double fast_tanh(double x) { return std::tanh(x); }

}  // namespace pgolf::kernels
