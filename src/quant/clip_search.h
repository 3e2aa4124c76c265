// GPTQ-lite (spec §3.4): choose the quantization clip among a few percentiles
// of |W| by reconstruction MSE, no Hessian. Three seed variants:
//   §3.4.a #1406 (and its full-GPTQ fallback): one choice per matrix, by the
//          mean squared error over the whole matrix; interpolated quantiles.
//   §3.4.b #562: one choice per row, by that row's MSE; interpolated quantiles.
//   §3.4.c #461/#456 with GPTQ_LITE=1: per row, other candidates, and the clip
//          is a sorted element (no interpolation).
// In every variant W itself is not clipped: values past the clip saturate at
// the grid's ends. Ties keep the earlier candidate (strict <).
#pragma once

#include <torch/types.h>

#include <vector>

#include "quant/intn.h"

namespace pgolf {

// The candidate lists, in the seeds' order.
const std::vector<double>& clip_candidates_pr1406();  // 0.999 0.9995 0.9999 0.99999 1.0 (#562 too)
const std::vector<double>& clip_candidates_pr461();   // 0.95 0.975 0.99 0.995 1.0

// How a candidate p becomes a row clip.
enum class ClipQuantile {
  kInterpolated,  // torch.quantile(|W|, p, dim=1) (linear), row max when p = 1
  kSortedIndex,   // sorted |W| row at index min(floor(p*(C-1)), C-1)
};

// Per-row clips [rows] (fp32) of a 2-D fp32 W for candidate p.
torch::Tensor row_clips(const torch::Tensor& w32, double p, ClipQuantile how);

// §3.4.a: the candidate whose row scales give the smallest whole-matrix MSE.
// `chosen`, if given, receives the index of the winning candidate.
IntQuantized clip_search_per_matrix(const torch::Tensor& weight, const IntGrid& grid,
                                    const std::vector<double>& candidates, int* chosen = nullptr);

// §3.4.b / §3.4.c: each row keeps the candidate with its smallest MSE.
IntQuantized clip_search_per_row(const torch::Tensor& weight, const IntGrid& grid,
                                 const std::vector<double>& candidates, ClipQuantile how);

// Mean squared reconstruction error of W against q * s (one number, fp32 mean).
double reconstruction_mse(const torch::Tensor& weight, const IntQuantized& quantized);

}  // namespace pgolf
