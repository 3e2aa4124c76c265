#include "train/schedule.h"

#include <algorithm>

namespace pgolf {

double lr_multiplier(const TrainConfig& c, int64_t step, double elapsed_ms) {
  if (c.warmdown_frac > 0) {
    // #1855: linear to zero over the last WARMDOWN_FRAC of the run, floored at MIN_LR.
    const double frac = c.training_frac(step, elapsed_ms);
    if (frac < 1.0 - c.warmdown_frac) return 1.0;
    return std::max((1.0 - frac) / c.warmdown_frac, c.min_lr);
  }
  if (c.warmdown_iters <= 0) return 1.0;
  if (c.max_wallclock_seconds <= 0) {
    const int64_t start = std::max<int64_t>(c.iterations - c.warmdown_iters, 0);
    if (step < start || step >= c.iterations) return 1.0;
    return std::max(static_cast<double>(c.iterations - step) /
                        static_cast<double>(std::max<int64_t>(c.warmdown_iters, 1)),
                    0.0);
  }
  // Wall-clock mode: decay over the last warmdown_iters * (mean step time).
  const double cap_ms = c.budget_ms();
  const double step_ms = elapsed_ms / static_cast<double>(std::max<int64_t>(step, 1));
  const double warmdown_ms = static_cast<double>(c.warmdown_iters) * step_ms;
  const double remaining_ms = std::max(cap_ms - elapsed_ms, 0.0);
  return remaining_ms <= warmdown_ms ? remaining_ms / std::max(warmdown_ms, 1e-9) : 1.0;
}

double muon_momentum_at(const TrainConfig& c, int64_t step) {
  const double frac =
      c.muon_momentum_warmup_steps > 0
          ? std::min(static_cast<double>(step) / static_cast<double>(c.muon_momentum_warmup_steps),
                     1.0)
          : 1.0;
  return (1.0 - frac) * c.muon_momentum_warmup_start + frac * c.muon_momentum;
}

}  // namespace pgolf
