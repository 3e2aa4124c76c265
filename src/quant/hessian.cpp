// HessianAccumulator (see hessian.h): sums in fp32 and normalises once at the
// end, as the seeds do (a running mean would round differently).
#include "quant/hessian.h"

#include <torch/torch.h>

#include "common/error.h"

namespace pgolf {

HessianAccumulator::HessianAccumulator(int64_t columns, Options options)
    : columns_(columns), options_(options) {
  PGOLF_CHECK(columns > 0, "HessianAccumulator: needs a positive column count, got {}", columns);
  PGOLF_CHECK(options.damp >= 0.0, "HessianAccumulator: damping must be >= 0, got {}",
              options.damp);
}

void HessianAccumulator::add(const torch::Tensor& inputs, bool new_batch) {
  PGOLF_CHECK(inputs.defined() && inputs.dim() >= 1 && inputs.size(-1) == columns_,
              "HessianAccumulator: inputs {} do not have {} columns",
              inputs.defined() ? c10::str(inputs.sizes()) : std::string("undefined"), columns_);
  torch::NoGradGuard no_grad;
  const torch::Tensor x = inputs.detach().to(torch::kFloat32).reshape({-1, columns_});
  if (options_.average == Average::kPerBatch) {
    // #1406: each product on the inputs' device, summed in fp32 (the seeds sum
    // on the CPU; an fp32 add rounds the same on any device, and summing where
    // the product is avoids a copy to the host per batch).
    if (!sum_.defined()) sum_ = torch::zeros({columns_, columns_}, x.options());
    sum_.add_(torch::matmul(x.t(), x));
  } else {
    // #562: a fused addmm into a sum kept on the inputs' device.
    if (!sum_.defined()) sum_ = torch::zeros({columns_, columns_}, x.options());
    sum_.addmm_(x.t(), x.to(sum_.device()));
  }
  if (new_batch) batches_ += 1;
  rows_ += x.size(0);
}

torch::Tensor HessianAccumulator::hessian() const {
  PGOLF_CHECK(batches_ > 0, "HessianAccumulator: no calibration batches were added");
  torch::Tensor h = sum_.to(torch::kCPU).clone();
  if (options_.average == Average::kPerBatch) {
    h.div_(static_cast<double>(batches_));
  } else {
    h.div_(static_cast<double>(std::max<int64_t>(rows_, 1)));
  }
  if (options_.damp > 0.0) {
    // The floor keeps a dead layer (all-zero inputs) invertible.
    const torch::Tensor damp = options_.damp * h.diagonal().mean().clamp_min(1e-6);
    h.add_(damp * torch::eye(columns_, torch::kFloat32));
  }
  return h;
}

const torch::Tensor* find_hessian(const Hessians& hessians, const std::string& name,
                                  int64_t columns, HessianMatch match) {
  for (const auto& [key, h] : hessians) {
    if (match == HessianMatch::kExact) {
      if (key != name) continue;
      PGOLF_CHECK(h.dim() == 2 && h.size(0) == columns && h.size(1) == columns,
                  "Hessian '{}' is {}, but the tensor has {} columns", key, c10::str(h.sizes()),
                  columns);
      return &h;
    }
    if (name.find(key) != std::string::npos && h.dim() == 2 && h.size(0) == columns) return &h;
  }
  return nullptr;
}

}  // namespace pgolf
