// retain_freed_host_memory: once set, blocks freed by one round of
// allocations are reused by the next without page faults. glibc's defaults
// trim this pattern's heap top (136 MB free > twice the 16 MB largest block)
// and fault every page in again.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "common/host_memory.h"

namespace pgolf {
namespace {

long minor_faults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

// Blocks of 1..16 MB, each written through, then all freed: a step's
// activations in miniature. Returns the page faults it took.
long allocation_round() {
  const long before = minor_faults();
  std::vector<void*> blocks;
  bool allocated = true;
  for (size_t mb = 1; mb <= 16 && allocated; ++mb) {
    void* p = std::malloc(mb << 20);
    allocated = p != nullptr;
    if (allocated) std::memset(p, 1, mb << 20);
    blocks.push_back(p);
  }
  for (void* p : blocks) std::free(p);
  // Out of memory fails the test's bound rather than passing it.
  return allocated ? minor_faults() - before : std::numeric_limits<long>::max();
}

TEST(HostMemory, FreedBlocksAreReusedWithoutPageFaults) {
#if !defined(__GLIBC__)
  GTEST_SKIP() << "mallopt settings are glibc's";
#endif
  ASSERT_TRUE(retain_freed_host_memory());
  EXPECT_NE(host_memory_policy().find("kept"), std::string::npos);
  allocation_round();  // maps the heap once
  allocation_round();
  const long pages = (136L << 20) / 4096;
  const long faults = allocation_round();
  // glibc's defaults: ~34,800 faults for the round (every page again).
  EXPECT_LT(faults, pages / 20) << "page faults in a round of reused blocks";
}

}  // namespace
}  // namespace pgolf
