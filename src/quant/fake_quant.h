// Fake quantisation for late QAT (spec quantize-eval-ttt §3.10,
// model-and-training §4.12): the forward sees the per-row quantised weight,
// the gradient passes straight through (w + stopgrad(q(w) - w)).
#pragma once

#include <torch/types.h>

namespace pgolf {

struct FakeQuantSpec {
  int64_t qmax = 0;  // 31: int6 (codes -32..31), 15: int5 (-16..15); 0: off
  // true: the export's per-row rule, s_r = max(fp16(max(rowmax/qmax, 1e-12)), 2^-14);
  // false: the scripts' own QAT rule, s_r = max(rowmax/qmax, 1/qmax) in fp32.
  bool match_export = true;
  bool active() const { return qmax > 0; }
};

// Per-row quantise -> dequantise of a matrix or a bank of matrices (rows =
// last-but-one dim), in fp32, returned in w's dtype. No gradient.
torch::Tensor quantize_dequantize_rows(const torch::Tensor& w, const FakeQuantSpec& spec);

// w + (q(w) - w).detach(): value q(w), gradient identity.
torch::Tensor fake_quantize(const torch::Tensor& w, const FakeQuantSpec& spec);

}  // namespace pgolf
