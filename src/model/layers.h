// Building blocks shared by every layer of the GPT (spec model-and-training §1):
// the weight-less RMSNorm and the reference's CastedLinear.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <functional>
#include <string>

#include "quant/fake_quant.h"

namespace pgolf {

// Weight-less RMSNorm over the last dim with eps = machine epsilon of the
// dtype (PyTorch's default when eps is None); computes in fp32 for
// low-precision inputs.
torch::Tensor rms_norm(const torch::Tensor& x);

// The residual stream's per-channel blends: a * x + b * y, and x + s * y,
// with a, b, s (D) vectors over (..., D) activations.
torch::Tensor blend(const torch::Tensor& a, const torch::Tensor& x, const torch::Tensor& b,
                    const torch::Tensor& y);
torch::Tensor add_scaled(const torch::Tensor& x, const torch::Tensor& s, const torch::Tensor& y);

// Sees the input of a weight matrix where the forward applies it: the weight's
// state-dict name (unbanked for #1406's banks, quant/scheme.h) and the input
// activations (..., in). Hessian calibration for full GPTQ (quant/hessian.h).
using InputObserver =
    std::function<void(const std::string& weight_name, const torch::Tensor& input)>;

// x @ w^T with w cast to x's dtype: how every fp32 master matrix is used under
// the reference's bf16 autocast.
torch::Tensor casted_linear(const torch::Tensor& x, const torch::Tensor& w);

// Linear layer without bias whose fp32 weight is cast to the input's dtype at
// use (the reference's CastedLinear). Construction draws nn.Linear's default
// init, so a seeded generator reproduces the reference's draw sequence.
class CastedLinearImpl : public torch::nn::Module {
 public:
  CastedLinearImpl(int64_t in_features, int64_t out_features, bool zero_init = false);
  torch::Tensor forward(const torch::Tensor& x) {
    if (observer) (*observer)(weight_name, x);
    return casted_linear(x, effective_weight());
  }
  // The weight the forward uses: fake-quantised during late QAT in training mode.
  torch::Tensor effective_weight() {
    return qat.active() && is_training() ? fake_quantize(weight, qat) : weight;
  }

  torch::Tensor weight;
  // The reference's `_zero_init` mark: output projections start at zero.
  bool zero_init = false;
  FakeQuantSpec qat;  // set by GPTImpl::set_qat
  // Set by GPTImpl::set_input_observer on the linears its forward calls.
  const InputObserver* observer = nullptr;
  std::string weight_name;
};
TORCH_MODULE(CastedLinear);

}  // namespace pgolf
