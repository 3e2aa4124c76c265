// Muon: momentum + Nesterov, then the update is orthogonalised by a quintic
// Newton-Schulz iteration (spec model-and-training §4.4; the reference's Muon).
//
// Per matrix (or bank of matrices) W with gradient G, momentum mu, learning
// rate lr, weight decay wd:
//   B <- mu*B + G;  U <- G + mu*B;  [MuonEq-R: U rows normalised]
//   O <- NS5(U) * sqrt(max(1, rows/cols));  W <- W (1 - lr wd);  W <- W - lr * bf16(O)
// The update passes through a bf16 buffer, as in the reference (its flat
// all-reduce buffer), whether Newton-Schulz itself runs in bf16 or fp32.
#pragma once

#include <torch/types.h>

#include <vector>

#include "config/enums.h"

namespace pgolf {

class ProcessGroup;

// The (a, b, c) of iteration `i` (0-based): the fixed quintic (3.4445,
// -4.7750, 2.0315), or #1855's Polar Express tuples (five of them; later
// iterations do not run: iterations() caps the count at five).
struct NsStep {
  double a, b, c;
};
NsStep ns_coefficients(NsCoefficients kind, int64_t i);
int64_t ns_iterations(NsCoefficients kind, int64_t steps);

// zeropower_via_newtonschulz5: X = G/(|G|_F + eps) in `dtype`, transposed when
// rows > cols, then `steps` iterations of X <- aX + (bA + cA^2)X with A = XX^T.
torch::Tensor newton_schulz5(const torch::Tensor& G, int64_t steps,
                             torch::ScalarType dtype = torch::kBFloat16, double eps = 1e-7,
                             NsCoefficients kind = NsCoefficients::kQuintic);

// The same bf16 iteration computed with fp32 kernels: every op runs in fp32
// on bf16 values and rounds its result to bf16, as PyTorch's bf16 ops do
// (matmuls accumulate in fp32). Returns bf16. Why: CPUs without native bf16
// matmul (no AVX-512 for oneDNN) run ATen's bf16 GEMM ~100x slower than fp32;
// this gives bf16 numerics at fp32 speed. Matches newton_schulz5(..., kBFloat16)
// up to fp32 summation order (tests/train/test_muon_fast.cpp).
torch::Tensor newton_schulz5_bf16_via_fp32(const torch::Tensor& G, int64_t steps, double eps = 1e-7,
                                           NsCoefficients kind = NsCoefficients::kQuintic);

struct MuonOptions {
  int64_t backend_steps = 5;
  bool nesterov = true;
  torch::ScalarType ns_dtype = torch::kBFloat16;
  double weight_decay = 0.0;   // decoupled: W <- W (1 - lr wd) before the update (§4.4)
  bool row_normalize = false;  // MuonEq-R: U rows / max(|row|, 1e-7) before Newton-Schulz
  NsCoefficients coefficients = NsCoefficients::kQuintic;
  // #1855: the gradient is rounded to bf16 and the momentum buffer is bf16.
  bool bf16_momentum = false;
  // With ns_dtype bf16 on the CPU: newton_schulz5_bf16_via_fp32 (same
  // numerics, fp32 kernels). Ignored on CUDA, where bf16 GEMMs are native.
  bool ns_bf16_via_fp32 = false;
};

class Muon {
 public:
  Muon(std::vector<torch::Tensor> params, MuonOptions options);

  // One update of every parameter that has a gradient.
  void step(double lr, double momentum);
  // Data parallel: split the Newton-Schulz work across the group's ranks.
  void set_process_group(ProcessGroup* group) { group_ = group; }

  const std::vector<torch::Tensor>& params() const { return params_; }
  // Momentum buffers, one per parameter (undefined until its first step).
  std::vector<torch::Tensor>& momentum_buffers() { return buffers_; }
  void reset_state();

 private:
  torch::Tensor orthogonalized_update(size_t i, double momentum);
  ProcessGroup* group_ = nullptr;
  std::vector<torch::Tensor> params_;
  std::vector<torch::Tensor> buffers_;
  MuonOptions options_;
};

}  // namespace pgolf
