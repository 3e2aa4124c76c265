#include "train/clock.h"

#include "common/device.h"

namespace pgolf {

void TrainingClock::start() {
  synchronize(device_);
  t0_ = Clock::now();
}

void TrainingClock::pause() {
  synchronize(device_);
  total_ms_ += std::chrono::duration<double, std::milli>(Clock::now() - t0_).count();
}

double TrainingClock::running_ms() const {
  return total_ms_ + std::chrono::duration<double, std::milli>(Clock::now() - t0_).count();
}

}  // namespace pgolf
