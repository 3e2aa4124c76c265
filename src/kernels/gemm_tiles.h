// The register tiles and loops of kernels/gemm.h's products, inlined into
// the attention kernel's CPU clones. Only the kernels library includes this
// header (its 32-byte vectors need the library's compile flags).
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "kernels/fast_math.h"
#include "kernels/gemm.h"
#include "kernels/rows.h"

namespace pgolf::kernels::gemm {

inline constexpr int kRowTile = 6;
inline constexpr int64_t kColTile = 16;
inline constexpr int64_t kDepthSlice = 256;

// R (<= 6) rows x 16 columns of C from K steps. A transposed is the better
// case: the R values of a step are adjacent.
template <int R, bool kTransposedA>
PGOLF_ALWAYS_INLINE void tile(int64_t K, const Matrix<const float>& A, const Matrix<const float>& B,
                              const Matrix<float>& C, bool accumulate) {
  f32x8 lo[R], hi[R];
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) lo[r] = hi[r] = splat(0.0f);
  for (int64_t k = 0; k < K; ++k) {
    const float* b = B.data + k * B.ld;
    const f32x8 b_lo = load8(b);
    const f32x8 b_hi = load8(b + 8);
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      // scalar * vector: GCC broadcasts from memory (vbroadcastss), where
      // splat()'s element-wise constructor becomes a chain of inserts.
      const float a = kTransposedA ? A.data[k * A.ld + r] : A.data[r * A.ld + k];
      lo[r] += a * b_lo;
      hi[r] += a * b_hi;
    }
  }
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
    float* c = C.data + r * C.ld;
    if (accumulate) {
      lo[r] += load8(c);
      hi[r] += load8(c + 8);
    }
    store8(c, lo[r]);
    store8(c + 8, hi[r]);
  }
}

template <bool kTransposedA>
PGOLF_ALWAYS_INLINE void tile_rows(int rows, int64_t K, const Matrix<const float>& A,
                                   const Matrix<const float>& B, const Matrix<float>& C,
                                   bool accumulate) {
  switch (rows) {
    case 6:
      return tile<6, kTransposedA>(K, A, B, C, accumulate);
    case 5:
      return tile<5, kTransposedA>(K, A, B, C, accumulate);
    case 4:
      return tile<4, kTransposedA>(K, A, B, C, accumulate);
    case 3:
      return tile<3, kTransposedA>(K, A, B, C, accumulate);
    case 2:
      return tile<2, kTransposedA>(K, A, B, C, accumulate);
    default:
      return tile<1, kTransposedA>(K, A, B, C, accumulate);
  }
}

// The depths [begin, end) that rows [i0, i1) of C must sum over.
inline std::pair<int64_t, int64_t> depth_range(const Banding& b, int64_t i0, int64_t i1,
                                               int64_t K) {
  switch (b.band) {
    case Band::kLowerA:
      return {0, std::clamp<int64_t>(i1 - 1 + b.diagonal, 0, K)};
    case Band::kUpperA:
      return {std::clamp<int64_t>(i0 - b.diagonal + 1, 0, K), K};
    default:
      return {0, K};
  }
}

template <bool kTransposedA>
PGOLF_ALWAYS_INLINE void tiles(int64_t M, int64_t N, int64_t K, const Matrix<const float>& A,
                               const Matrix<const float>& B, const Matrix<float>& C,
                               bool accumulate, const Banding& band) {
  for (int64_t j = 0; j < N; j += kColTile) {
    for (int64_t i = 0; i < M; i += kRowTile) {
      const int64_t rows = std::min<int64_t>(kRowTile, M - i);
      if (band.band == Band::kLowerResult && j >= i + rows - 1 + band.diagonal) continue;
      const auto [k_begin, k_end] = depth_range(band, i, i + rows, K);
      for (int64_t k0 = k_begin; k0 < k_end; k0 += kDepthSlice) {
        tile_rows<kTransposedA>(static_cast<int>(rows), std::min(kDepthSlice, k_end - k0),
                                A.offset(i, k0), B.offset(k0, j), C.offset(i, j),
                                accumulate || k0 > k_begin);
      }
    }
  }
}

// Plain loops: double, and float columns past the last full 16.
template <typename T>
PGOLF_ALWAYS_INLINE void multiply_plain(int64_t M, int64_t n0, int64_t N, int64_t K,
                                        const Matrix<const T>& A, const Matrix<const T>& B,
                                        const Matrix<T>& C, bool accumulate) {
  for (int64_t i = 0; i < M; ++i) {
    T* c = &C(i, 0);
    if (!accumulate) {
      for (int64_t j = n0; j < N; ++j) c[j] = T(0);
    }
    for (int64_t k = 0; k < K; ++k) {
      const T a = A(i, k);
      const T* b = &B(k, 0);
#pragma omp simd
      for (int64_t j = n0; j < N; ++j) c[j] += a * b[j];
    }
  }
}

// C = [C +] A . B. B and C must not be transposed.
template <typename T>
PGOLF_ALWAYS_INLINE void multiply(int64_t M, int64_t N, int64_t K, const Matrix<const T>& A,
                                  const Matrix<const T>& B, const Matrix<T>& C, bool accumulate,
                                  const Banding& band = {}) {
  if (!accumulate && (K == 0 || band.band == Band::kLowerA || band.band == Band::kUpperA)) {
    // Banded depths start partway: zero C once and accumulate.
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C(i, j) = T(0);
    accumulate = true;
  }
  if (K == 0) return;
  int64_t done = 0;
  if constexpr (std::is_same_v<T, float>) {
    done = N - N % kColTile;
    if (A.transposed) {
      tiles<true>(M, done, K, A, B, C, accumulate, band);
    } else {
      tiles<false>(M, done, K, A, B, C, accumulate, band);
    }
  }
  // Only when columns remain: its loops over rows and depth would otherwise
  // run empty, M x K iterations (measured: 20 us of a 50 us 64 x 64 x 256).
  if (done < N) multiply_plain(M, done, N, K, A, B, C, accumulate);
}

// dst (cols x rows, row stride ld_dst) = src (rows x cols, row stride ld)
// transposed, in 16 x 16 blocks written a destination row at a time.
template <typename T>
PGOLF_ALWAYS_INLINE void transpose(int64_t rows, int64_t cols, const T* src, int64_t ld, T* dst,
                                   int64_t ld_dst) {
  constexpr int64_t kBlock = 16;
  for (int64_t i0 = 0; i0 < rows; i0 += kBlock) {
    const int64_t i1 = std::min(rows, i0 + kBlock);
    for (int64_t j0 = 0; j0 < cols; j0 += kBlock) {
      const int64_t j1 = std::min(cols, j0 + kBlock);
      for (int64_t j = j0; j < j1; ++j)
        for (int64_t i = i0; i < i1; ++i) dst[j * ld_dst + i] = src[i * ld + j];
    }
  }
}

}  // namespace pgolf::kernels::gemm
