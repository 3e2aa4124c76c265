// Threads per process: THREADS=0 shares the machine's cores among its ranks.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <thread>

#include "common/device.h"

namespace pgolf {
namespace {

TEST(ConfigureThreads, ZeroSharesTheCoresAmongTheLocalRanks) {
  const int saved = at::get_num_threads();
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  configure_threads(0, 1);
  EXPECT_EQ(at::get_num_threads(), cores);
  configure_threads(0, 2);
  EXPECT_EQ(at::get_num_threads(), std::max(1, cores / 2));
  configure_threads(0, 4 * cores);  // more ranks than cores: one thread each
  EXPECT_EQ(at::get_num_threads(), 1);
  configure_threads(3, 8);  // an explicit count wins
  EXPECT_EQ(at::get_num_threads(), 3);
  configure_threads(saved);
}

}  // namespace
}  // namespace pgolf
