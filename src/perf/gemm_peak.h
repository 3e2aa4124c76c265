// The matrix-multiply peak of this machine, measured: the denominator of
// model FLOP utilisation (`pgolf bench`, `pgolf doctor`).
#pragma once

#include <torch/types.h>

namespace pgolf {

// Best-of-several n x n matmul rate of `dtype` on `device`, GFLOP/s; stops
// repeating once `max_seconds` have passed (one repeat always runs).
double gemm_peak_gflops(int64_t n, torch::ScalarType dtype, torch::Device device,
                        double max_seconds = 10.0);

}  // namespace pgolf
