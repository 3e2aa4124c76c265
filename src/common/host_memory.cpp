#include "common/host_memory.h"

#include <fmt/format.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <atomic>

namespace pgolf {
namespace {

constexpr int kMmapThreshold = 32 << 20;  // glibc's maximum (HEAP_MAX_SIZE / 2)
constexpr int kTrimThreshold = 1 << 30;

std::atomic<bool>& retained() {
  static std::atomic<bool> flag{false};
  return flag;
}

}  // namespace

bool retain_freed_host_memory() {
#if defined(__GLIBC__)
  // A fixed threshold also stops glibc's dynamic one, which only ever rises
  // to the largest block freed so far.
  const bool ok = mallopt(M_MMAP_THRESHOLD, kMmapThreshold) == 1 &&
                  mallopt(M_TRIM_THRESHOLD, kTrimThreshold) == 1;
  retained() = ok;
  return ok;
#else
  return false;
#endif
}

std::string host_memory_policy() {
  if (!retained()) return "C library defaults (freed blocks go back to the kernel)";
  return fmt::format("freed blocks kept (mmap threshold {} MB, trim threshold {} MB)",
                     kMmapThreshold >> 20, kTrimThreshold >> 20);
}

}  // namespace pgolf
