// Late QAT (LATE_QAT): once the LR multiplier falls below QAT_THRESHOLD, the
// matrices are fake-quantised in the forward pass (straight-through), on the
// export's grid, until the export switches it off.
#pragma once

#include <cstdint>

#include "config/config.h"
#include "model/gpt.h"

namespace pgolf {

class LateQat {
 public:
  LateQat(const TrainConfig& config, GPT model) : config_(config), model_(std::move(model)) {}
  // Before a step at multiplier `lr_scale`: true if this turned QAT on.
  bool maybe_enable(double lr_scale);
  void set(bool on);  // a resumed run's state
  bool on() const { return on_; }

 private:
  const TrainConfig& config_;
  GPT model_;
  bool on_ = false;
};

}  // namespace pgolf
