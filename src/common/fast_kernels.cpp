#include "common/fast_kernels.h"

#include <atomic>

namespace pgolf {
namespace {

// Constant-initialised, so registration from another file's static
// initialiser cannot run before them.
std::atomic<const FastKernels*> g_kernels{nullptr};
std::atomic<bool> g_enabled{true};

}  // namespace

void register_fast_kernels(const FastKernels* kernels) { g_kernels.store(kernels); }

bool fast_kernels_enabled() { return g_enabled.load(std::memory_order_relaxed); }

void set_fast_kernels_enabled(bool enabled) { g_enabled.store(enabled); }

const FastKernels* fast_kernels_for(const at::Tensor& x) {
  const FastKernels* kernels = g_kernels.load(std::memory_order_relaxed);
  if (kernels == nullptr || !fast_kernels_enabled() || !kernels->supports(x)) return nullptr;
  return kernels;
}

}  // namespace pgolf
