#include "kernels/fused.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace pgolf::kernels {
namespace {

bool enabled_from_environment() {
  const char* value = std::getenv("PGOLF_FUSED_KERNELS");
  return value == nullptr || std::strcmp(value, "0") != 0;
}

std::atomic<bool>& enabled_flag() {
  static std::atomic<bool> flag{enabled_from_environment()};
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
