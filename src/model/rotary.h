// Rotary position embeddings (spec model-and-training §3.6.1): rotate-half on
// the first `rope_dims` dims of each head, with the scripts' NTK-aware base
// for sequences longer than a reference length.
#pragma once

#include <torch/types.h>

#include <utility>

namespace pgolf {

// Effective RoPE base for a sequence of `seq_len` tokens: base when NTK
// scaling is off (ntk_ref_len = 0) or seq_len <= ntk_ref_len, else
// base * (seq_len/ntk_ref_len)^(R/(R-2)) -- active at T=2048 in #1406/#461
// because their reference length is hard-coded to 1024.
double rope_base_for(double base, int64_t rope_dims, int64_t ntk_ref_len, int64_t seq_len);

// cos/sin tables, cached per sequence length, dtype and device.
class Rotary {
 public:
  Rotary(int64_t rope_dims, double base, int64_t ntk_ref_len);
  // Both (1, 1, T, rope_dims/2) in `dtype`.
  std::pair<torch::Tensor, torch::Tensor> tables(int64_t seq_len, torch::Device device,
                                                 torch::ScalarType dtype);
  // Long-context evaluation (spec quantize-eval-ttt §2.5): NTK scaling above `len`.
  void set_ntk_ref_len(int64_t len) {
    ntk_ref_len_ = len;
    cos_ = sin_ = torch::Tensor();
  }
  int64_t ntk_ref_len() const { return ntk_ref_len_; }

 private:
  int64_t rope_dims_;
  double base_;
  int64_t ntk_ref_len_;
  int64_t cached_len_ = 0;
  torch::ScalarType cached_dtype_ = torch::kFloat;
  torch::Device cached_device_ = torch::kCPU;
  torch::Tensor cos_, sin_;
};

// Rotate-half RoPE with the reference's sign convention on the first
// 2*cos.size(-1) dims; the remaining dims pass through:
//   (x1, x2) -> (x1 cos + x2 sin, -x1 sin + x2 cos).
torch::Tensor apply_rotary(const torch::Tensor& x, const torch::Tensor& cos,
                           const torch::Tensor& sin);

}  // namespace pgolf
