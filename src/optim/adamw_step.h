// One AdamW step for a whole parameter group in a handful of multi-tensor
// (foreach) kernels instead of LibTorch's loop of ~8 kernels per parameter:
// a small model on a GPU is otherwise bound by kernel launches.
//
// The arithmetic is torch::optim::AdamW::step's, op for op (decoupled decay,
// moments by mul_/add_/addcmul_, denom = sqrt(v) / sqrt(1 - b2^t) + eps,
// p -= lr / (1 - b1^t) * m / denom), on the optimizer's own state, so results
// and checkpoints are bit-identical to LibTorch's step (tests/optim).
#pragma once

#include <torch/optim/adamw.h>

namespace pgolf {

// Steps every parameter of `optimizer` that has a gradient. AMSGrad is not
// supported (no pgolf group uses it): a clear error.
void adamw_step_foreach(torch::optim::AdamW& optimizer);

}  // namespace pgolf
