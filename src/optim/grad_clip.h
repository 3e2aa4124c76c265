// Gradient clipping by the global L2 norm without a host sync.
//
// LibTorch's torch::nn::utils::clip_grad_norm_ computes the same scaling on
// the device but then returns the norm as a double, i.e. waits for the GPU
// every step. This is its arithmetic, op for op (per-gradient norms, the norm
// of their stack, coef = min(max_norm / (norm + 1e-6), 1), grads *= coef), with
// the norm left on the device: bit-identical gradients, no sync.
#pragma once

#include <torch/types.h>

#include <vector>

namespace pgolf {

// Scales the defined gradients of `params` in place; returns the total norm
// before clipping as a device scalar (undefined if no gradient is defined).
torch::Tensor clip_grad_norm_no_sync(const std::vector<torch::Tensor>& params, double max_norm);

}  // namespace pgolf
