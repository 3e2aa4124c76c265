#include "kernels/gemm.h"

#include "kernels/gemm_tiles.h"

namespace pgolf::kernels::gemm {

PGOLF_CPU_CLONES void multiply_floats(int64_t M, int64_t N, int64_t K, const Matrix<const float>& A,
                                      const Matrix<const float>& B, const Matrix<float>& C,
                                      bool accumulate, const Banding& band) {
  multiply<float>(M, N, K, A, B, C, accumulate, band);
}

}  // namespace pgolf::kernels::gemm
