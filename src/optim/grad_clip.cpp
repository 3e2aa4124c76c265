#include "optim/grad_clip.h"

#include <ATen/ops/_foreach_mul.h>

namespace pgolf {

torch::Tensor clip_grad_norm_no_sync(const std::vector<torch::Tensor>& params, double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads, norms;
  for (const auto& p : params) {
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  if (grads.empty()) return {};
  for (const auto& g : grads) norms.push_back(g.norm(2));
  const auto total = norms.size() == 1 ? norms[0] : torch::stack(norms).norm(2);
  const auto coef = torch::clamp(max_norm / (total + 1e-6), std::nullopt, 1.0);
  at::_foreach_mul_(grads, coef);  // one launch for all gradients
  return total;
}

}  // namespace pgolf
