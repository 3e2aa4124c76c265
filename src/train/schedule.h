// The reference's schedules (spec model-and-training §4.6): the LR multiplier
// (linear warmdown, by iterations or by wall clock) and Muon's momentum warm-up.
#pragma once

#include <cstdint>

#include "config/config.h"

namespace pgolf {

// Multiplier s applied to every group's base LR before step `step` (steps
// already done), `elapsed_ms` training milliseconds so far: WARMDOWN_FRAC's
// fraction rule (with the MIN_LR floor) when set, else WARMDOWN_ITERS's.
double lr_multiplier(const TrainConfig& config, int64_t step, double elapsed_ms);

// Muon momentum at `step`: linear from MUON_MOMENTUM_WARMUP_START to
// MUON_MOMENTUM over MUON_MOMENTUM_WARMUP_STEPS.
double muon_momentum_at(const TrainConfig& config, int64_t step);

}  // namespace pgolf
