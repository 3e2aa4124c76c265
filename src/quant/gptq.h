// Full Hessian-aware GPTQ (spec §3.6): quantize one column at a time and push
// each column's rounding error onto the columns not yet quantized, weighted
// by the inverse Hessian, so that the layer's output error
// tr((W - Q) H (W - Q)^T) stays small. H = X^T X of the layer's inputs comes
// from quant/hessian.h. Two seed variants, each reproduced literally:
//   #1406 (quantize_int6_gptq): extra damping 0.005 mean diag, act-order
//     (descending diag H), upper Cholesky factor of H^-1, one full pass per
//     clip candidate of §3.4.a, kept by plain weight MSE.
//   #562 (gptq_quantize_weight): per-row scales from §3.4.b first, damping
//     0.01 mean diag, ascending diag order, the full H^-1 itself (not its
//     Cholesky factor), diagonal fallback if H is not positive definite.
//   #1855 (gptq_quantize_weight, "SDClip"): #1406's column loop with one
//     scale per row fixed first, k * std(row) / (2^(bits-1) - 1) in fp16 (no
//     clip search), damping 0.01 mean diag (docs/entries/pr1855.md §7.3).
#pragma once

#include <torch/types.h>

#include <vector>

#include "quant/clip_search.h"
#include "quant/intn.h"

namespace pgolf {

inline constexpr int64_t kGptqBlockSize = 128;  // GPTQ_BLOCK_SIZE, both seeds

// #1406: W [rows, cols] (any float dtype), H [cols, cols] already damped by
// the accumulator (§3.7). Returns int8 codes in the grid's range and fp16
// row scales. Throws pgolf::Error if H (damped) is not positive definite.
IntQuantized gptq_quantize_pr1406(const torch::Tensor& weight, const torch::Tensor& hessian,
                                  const IntGrid& grid = int6_pr1406(),
                                  const std::vector<double>& candidates = clip_candidates_pr1406(),
                                  int64_t block_size = kGptqBlockSize);

// #562: W [rows, cols], H [cols, cols] undamped (its accumulator does not damp).
IntQuantized gptq_quantize_pr562(const torch::Tensor& weight, const torch::Tensor& hessian,
                                 const IntGrid& grid, int64_t block_size = kGptqBlockSize);

// #1855: W [rows, cols], H [cols, cols] undamped (averaged per batch), codes
// in [-(2^(bits-1) - 1), 2^(bits-1) - 1], row scales sdclip_scales(W).
IntQuantized gptq_quantize_sdclip(const torch::Tensor& weight, const torch::Tensor& hessian,
                                  int bits, double clip_sigmas,
                                  int64_t block_size = kGptqBlockSize);
// fp16 [rows]: max(k * std(row) / (2^(bits-1) - 1), 1e-10), std unbiased.
torch::Tensor sdclip_scales(const torch::Tensor& weight, int bits, double clip_sigmas);
// The symmetric grid of that scheme: [-(2^(bits-1) - 1), 2^(bits-1) - 1].
IntGrid sdclip_grid(int bits);

// tr((W - Ŵ) H (W - Ŵ)^T) in fp64, Ŵ = q * s: the proxy loss GPTQ minimises.
double hessian_weighted_error(const torch::Tensor& weight, const IntQuantized& quantized,
                              const torch::Tensor& hessian);

}  // namespace pgolf
