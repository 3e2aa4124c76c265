// The training clock: wall time spent training, paused while the model is
// validated or a checkpoint is written (as the reference's training_time_ms),
// with the device synchronised at each edge so queued work is counted.
#pragma once

#include <torch/types.h>

#include <chrono>

namespace pgolf {

class TrainingClock {
 public:
  explicit TrainingClock(torch::Device device) : device_(device) {}
  void start();  // (re)starts counting
  void pause();  // adds the time since start() to the total
  // Milliseconds counted so far, paused time excluded; running() adds the
  // current stretch without stopping it.
  double total_ms() const { return total_ms_; }
  double running_ms() const;
  void set_total_ms(double ms) { total_ms_ = ms; }  // a resumed run's time

 private:
  using Clock = std::chrono::steady_clock;
  torch::Device device_;
  Clock::time_point t0_ = Clock::now();
  double total_ms_ = 0;
};

}  // namespace pgolf
