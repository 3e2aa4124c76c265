// The warmdown multiplier and Muon momentum warm-up at hand-computed points.
#include <gtest/gtest.h>

#include "train/schedule.h"

namespace pgolf {
namespace {

TEST(Schedule, IterationModeDecaysLinearlyOverWarmdown) {
  TrainConfig c;
  c.max_wallclock_seconds = 0;
  c.iterations = 5200;
  c.warmdown_iters = 3000;
  EXPECT_DOUBLE_EQ(lr_multiplier(c, 0, 0), 1.0);
  EXPECT_DOUBLE_EQ(lr_multiplier(c, 2199, 0), 1.0);
  EXPECT_DOUBLE_EQ(lr_multiplier(c, 2200, 0), 1.0);  // (5200-2200)/3000
  EXPECT_DOUBLE_EQ(lr_multiplier(c, 3700, 0), 0.5);
  EXPECT_DOUBLE_EQ(lr_multiplier(c, 5199, 0), 1.0 / 3000);
  EXPECT_DOUBLE_EQ(lr_multiplier(c, 5200, 0), 1.0);  // outside [start, iterations)
}

TEST(Schedule, WallclockModeUsesMeanStepTime) {
  TrainConfig c;
  c.max_wallclock_seconds = 600;
  c.warmdown_iters = 1200;
  // 100 ms/step: warmdown spans the last 120 s.
  EXPECT_DOUBLE_EQ(lr_multiplier(c, 4000, 400000), 1.0);
  EXPECT_DOUBLE_EQ(lr_multiplier(c, 4800, 480000), 1.0);  // remaining 120 s == warmdown
  EXPECT_DOUBLE_EQ(lr_multiplier(c, 5400, 540000), 0.5);
  EXPECT_DOUBLE_EQ(lr_multiplier(c, 6000, 600000), 0.0);
  // Step 0: step_ms = elapsed / max(step, 1).
  EXPECT_DOUBLE_EQ(lr_multiplier(c, 0, 0), 1.0);
  EXPECT_NEAR(lr_multiplier(c, 0, 599900), 100.0 / (1200 * 599900.0), 1e-15);
}

// #1855: WARMDOWN_FRAC of the budget (MAX_WALLCLOCK_SECONDS less the GPTQ
// reserve), floored at MIN_LR; the fraction also drives ENABLE_LOOPING_AT.
TEST(Schedule, WarmdownFractionWithFloor) {
  TrainConfig c;
  c.max_wallclock_seconds = 600;
  c.gptq_reserve_seconds = 0.5;
  c.warmdown_frac = 0.85;
  c.min_lr = 0.1;
  EXPECT_DOUBLE_EQ(c.budget_ms(), 599'500.0);
  EXPECT_DOUBLE_EQ(c.training_frac(7, 0.35 * 599'500.0), 0.35);
  EXPECT_DOUBLE_EQ(lr_multiplier(c, 100, 0.10 * 599'500.0), 1.0);
  EXPECT_NEAR(lr_multiplier(c, 100, 0.5 * 599'500.0), 0.5 / 0.85, 1e-12);
  EXPECT_DOUBLE_EQ(lr_multiplier(c, 100, 0.95 * 599'500.0), 0.1);  // (1-0.95)/0.85 < 0.1
  // Without a cap the fraction is step / ITERATIONS.
  c.max_wallclock_seconds = 0;
  c.iterations = 1000;
  EXPECT_DOUBLE_EQ(c.budget_ms(), 0.0);
  EXPECT_NEAR(lr_multiplier(c, 575, 0), 0.425 / 0.85, 1e-12);
}

TEST(Schedule, NoWarmdownMeansConstant) {
  TrainConfig c;
  c.warmdown_iters = 0;
  EXPECT_DOUBLE_EQ(lr_multiplier(c, 123, 599999), 1.0);
}

TEST(Schedule, MuonMomentumWarmsUpLinearly) {
  TrainConfig c;  // 0.85 -> 0.95 over 500 steps
  EXPECT_DOUBLE_EQ(muon_momentum_at(c, 0), 0.85);
  EXPECT_NEAR(muon_momentum_at(c, 250), 0.90, 1e-15);
  EXPECT_DOUBLE_EQ(muon_momentum_at(c, 500), 0.95);
  EXPECT_DOUBLE_EQ(muon_momentum_at(c, 10000), 0.95);
  c.muon_momentum_warmup_steps = 0;
  EXPECT_DOUBLE_EQ(muon_momentum_at(c, 0), 0.95);
}

}  // namespace
}  // namespace pgolf
