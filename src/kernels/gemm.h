// Small matrix products for the attention kernel's blocks,
// C (M x N) = [C +] A (M x K) . B (K x N), row-major with row strides, A
// optionally stored transposed. Why not MKL through ATen: a 64-row block's
// product (64 x 256 x 64 at T = 256) is ~25 us of FMAs, so a few us of
// at::mm dispatch per product (five per block) would be a large share, and
// ATen's own CPU flash attention, which calls its BLAS per block, runs at
// ~30 % of the matmul peak here. float: a 6 x 16 register tile of FMAs (12
// of the 16 AVX2 registers accumulate), the BLIS shape for AVX2, with K in
// 256-deep slices so a 16-column slice of B stays in L1. double (the
// gradient checks): plain loops.
#pragma once

#include <cstdint>

namespace pgolf::kernels::gemm {

// A matrix in memory: element (i, j) at data[i * ld + j], or at
// data[j * ld + i] when `transposed` (an operand stored as its transpose).
template <typename T>
struct Matrix {
  T* data;
  int64_t ld;
  bool transposed = false;
  T& operator()(int64_t i, int64_t j) const {
    return transposed ? data[j * ld + i] : data[i * ld + j];
  }
  Matrix offset(int64_t i, int64_t j) const { return {&(*this)(i, j), ld, transposed}; }
};

// Causal attention's products are banded; the kernel skips what the band
// makes zero or unneeded (a quarter of the work of 64-row blocks at T = 256).
// With diagonal d:
//   kLowerResult: only C(i, j) with j < i + d is wanted (scores of a block);
//                 whole tiles outside are skipped and left unwritten;
//   kLowerA:      A(i, k) = 0 for k >= i + d (probabilities times keys);
//   kUpperA:      A(i, k) = 0 for k < i - d + 1 (their transposes).
enum class Band { kNone, kLowerResult, kLowerA, kUpperA };
struct Banding {
  Band band = Band::kNone;
  int64_t diagonal = 0;
};

// The float product as the attention kernel runs it (the CPU's clone), for
// tests; the kernel itself inlines gemm_tiles.h's multiply.
void multiply_floats(int64_t M, int64_t N, int64_t K, const Matrix<const float>& A,
                     const Matrix<const float>& B, const Matrix<float>& C, bool accumulate,
                     const Banding& band = {});

}  // namespace pgolf::kernels::gemm
