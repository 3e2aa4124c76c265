// LQER, the record #1855's low-rank error correction (docs/entries/pr1855.md
// §7.5): after GPTQ, the quantization error E = W - q*s of the few tensors
// where it is largest (Frobenius norm) is approximated by a rank-r SVD,
// E ~ A B with A = U_r diag(S_r) [rows, r] and B = V_r^T [r, cols], and both
// factors are themselves quantized and stored beside the codes; dequantization
// adds (A_q * sA) @ (B_q * sB). Two packings, as the script:
//   asymmetric: A int2 in [-2, 1] with one fp16 scale max|A| / 1.5; B int4 in
//               [-8, 7] with one fp16 scale max|g| / 7.5 per group g of 64
//               consecutive values of B (row-major); needs numel(B) % 64 == 0
//   symmetric:  A and B int`bits` in [-(2^(b-1)-1), 2^(b-1)-1], one fp16
//               scale max|row| / (2^(b-1)-1) per row
// Codes are int8 containers; the compressor does the rest.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <utility>

namespace pgolf {

struct LowRankFactors {
  torch::Tensor a;        // int8 [rows, r]
  torch::Tensor a_scale;  // fp16: 0-D (asymmetric) or [rows] (symmetric)
  torch::Tensor b;        // int8 [r, cols]
  torch::Tensor b_scale;  // fp16: [r * cols / group] (asymmetric) or [r] (symmetric)
  bool asymmetric = true;
  int bits = 4;  // symmetric factors' code width (LQER_FACTOR_BITS)

  bool defined() const { return a.defined(); }
  // Bytes of the four tensors (codes and scales), 0 when undefined.
  int64_t nbytes() const;
  int64_t rank() const { return a.defined() ? a.size(1) : 0; }
  // Each factor's code range [lo, hi]: asymmetric A [-2, 1], B [-8, 7];
  // symmetric both +-(2^(bits-1) - 1).
  std::pair<int, int> a_range() const;
  std::pair<int, int> b_range() const;
};

struct LqerOptions {
  bool enabled = true;      // LQER_ENABLED
  int64_t rank = 4;         // LQER_RANK
  int64_t top_k = 3;        // LQER_TOP_K
  int64_t factor_bits = 4;  // LQER_FACTOR_BITS, symmetric packing
  bool asymmetric = true;   // LQER_ASYM_ENABLED
  int64_t group = 64;       // LQER_ASYM_GROUP
};

// Factors of `error` [rows, cols] (fp32): SVD (LAPACK, as the script), rank
// min(options.rank, min(rows, cols)), packed asymmetrically when enabled and
// the group divides numel(B), else symmetrically.
LowRankFactors lqer_factorize(const torch::Tensor& error, const LqerOptions& options);

// (A_q * sA) @ (B_q * sB) in fp32, [rows, cols]: what dequantization adds.
torch::Tensor lqer_correction(const LowRankFactors& factors);

// Checks shapes, dtypes and code ranges of factors read from a file for a
// tensor of `rows` x `cols`; throws pgolf::Error naming `what`.
void check_lqer_factors(const LowRankFactors& factors, int64_t rows, int64_t cols,
                        const std::string& what);

}  // namespace pgolf
