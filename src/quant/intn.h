// The entries' per-row symmetric int5/int6 quantizer (spec quantize-eval-ttt
// §3.1, §3.3): q = clamp(round(W / s_r), qmin, qmax), s_r stored in fp16 and
// dequantized as q * s_r. No zero point. Two seed families differ in the
// range and in the scale floor, and both are reproduced bit for bit:
//   #1406 int6:          [-31, 31],  s = fp16(max(c/31, 1/31))
//   #461/#456/#562 intN: [-(qmax+1), qmax], s = max(fp16(max(c/qmax, 1e-12)), 2^-14)
// The int8 path (§3.2) is quant/int8.h's quantize_float_tensor_int8.
#pragma once

#include <torch/types.h>

#include <string>

namespace pgolf {

// Which seed's scale floor and lower bound (the two rows of the table above).
enum class ScaleRule { kPr1406, kPr461 };

// An integer grid: code range and scale rule.
struct IntGrid {
  int bits = 6;  // code width; every code fits in [-2^(bits-1), 2^(bits-1) - 1]
  int qmin = -32;
  int qmax = 31;  // the seeds' "clip_range"
  ScaleRule rule = ScaleRule::kPr461;

  std::string describe() const;  // e.g. "int6 [-31, 31] (#1406 scale floor)"
};

// #1406 int6: [-31, 31], floor 1/31 before the fp16 rounding.
IntGrid int6_pr1406();
// #461/#456/#562 int6 [-32, 31] and int5 [-16, 15]: floor 2^-14 after it.
IntGrid int6_pr461();
IntGrid int5_pr461();

// Codes and scales of one quantized tensor: q int8 with W's shape, scale
// fp16 [rows] (per row) or fp16 0-D (per tensor).
struct IntQuantized {
  torch::Tensor q;
  torch::Tensor scale;
};

// fp16 row scales from fp32 clips [rows], with the grid's floor.
torch::Tensor row_scales(const torch::Tensor& clip, const IntGrid& grid);

// q = clamp(round(W / s), qmin, qmax) as int8, with the stored (fp16) scale
// as divisor; `scale` is [rows] for a 2-D W, or 0-D.
torch::Tensor quantize_with_scales(const torch::Tensor& w32, const torch::Tensor& scale,
                                   const IntGrid& grid);

// q * s in fp32: the per-row (or scalar) dequantization of §3.1.
torch::Tensor dequantize_codes(const torch::Tensor& q, const torch::Tensor& scale);

// §3.3: clip = row max |W| (#461/#456 without GPTQ_LITE). Needs a 2-D W.
IntQuantized quantize_rowmax(const torch::Tensor& weight, const IntGrid& grid);

// A non-2-D tensor: one fp16 0-D scale from the tensor's max |W|, no floor
// but the seed's own: #1406 amax/31 (1.0 when amax = 0); #461 max(amax/qmax, 1e-12).
IntQuantized quantize_per_tensor(const torch::Tensor& weight, const IntGrid& grid);

}  // namespace pgolf
