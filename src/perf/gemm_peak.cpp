#include "perf/gemm_peak.h"

#include <algorithm>
#include <chrono>

#include "common/device.h"

namespace pgolf {

double gemm_peak_gflops(int64_t n, torch::ScalarType dtype, torch::Device device,
                        double max_seconds) {
  using Clock = std::chrono::steady_clock;
  auto opts = torch::TensorOptions().dtype(dtype).device(device);
  auto a = torch::randn({n, n}, opts), b = torch::randn({n, n}, opts),
       c = torch::empty({n, n}, opts);
  torch::mm_out(c, a, b);  // warm-up
  synchronize(device);
  double best = 0;
  // Best of five, not the mean: on a shared machine the fastest repeat is the
  // one least disturbed by other processes, i.e. closest to the hardware's rate.
  // A slow dtype (bf16 without native CPU support runs ~100x slower) stops
  // after a few seconds rather than taking minutes.
  const auto start = Clock::now();
  for (int rep = 0; rep < 5; ++rep) {
    if (rep > 0 && std::chrono::duration<double>(Clock::now() - start).count() > max_seconds) break;
    const int inner = 3;
    const auto t0 = Clock::now();
    for (int i = 0; i < inner; ++i) torch::mm_out(c, a, b);
    synchronize(device);
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, inner * 2.0 * n * n * n / s / 1e9);
  }
  return best;
}

}  // namespace pgolf
