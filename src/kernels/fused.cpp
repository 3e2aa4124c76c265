#include "kernels/fused.h"

#include <atomic>

namespace pgolf::kernels {
namespace {

std::atomic<bool>& enabled_flag() {
  static std::atomic<bool> flag{true};
  return flag;
}

}  // namespace

bool fused_enabled() { return enabled_flag().load(std::memory_order_relaxed); }

void set_fused_enabled(bool enabled) { enabled_flag().store(enabled); }

bool supports(const at::Tensor& x) {
  return x.device().is_cpu() && x.dim() >= 1 && x.numel() > 0 &&
         (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble) && x.stride(-1) == 1;
}

bool applies(const at::Tensor& x) { return fused_enabled() && supports(x); }

}  // namespace pgolf::kernels
