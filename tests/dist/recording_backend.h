// A c10d backend that runs no collective but records the device of every
// tensor handed to it: the fake rank of a ProcessGroup whose device is `meta`
// (a device CPU-only machines have), so a test can prove that every reduction
// reaches the backend on the group's device, whatever device the caller's
// tensor was on. Meta tensors carry no values: each result is replaced by
// zeros on the CPU (c10d's contract returns results in the vector's tensors).
#pragma once

#include <memory>
#include <string>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <vector>

#include "dist/process_group.h"

namespace pgolf::testing {

class RecordingBackend : public c10d::Backend {
 public:
  struct Call {
    std::string op;
    torch::Device device;
  };

  explicit RecordingBackend(std::shared_ptr<std::vector<Call>> calls)
      : c10d::Backend(/*rank=*/0, /*size=*/2), calls_(std::move(calls)) {}

  c10::intrusive_ptr<c10d::Work> allreduce(std::vector<at::Tensor>& tensors,
                                           const c10d::AllreduceOptions&) override {
    return record("allreduce", tensors);
  }
  c10::intrusive_ptr<c10d::Work> broadcast(std::vector<at::Tensor>& tensors,
                                           const c10d::BroadcastOptions&) override {
    return record("broadcast", tensors);
  }
  c10::intrusive_ptr<c10d::Work> barrier(const c10d::BarrierOptions&) override {
    return c10::make_intrusive<Done>();
  }

 private:
  struct Done : c10d::Work {
    bool isCompleted() override { return true; }
    bool wait(std::chrono::milliseconds) override { return true; }
  };

  c10::intrusive_ptr<c10d::Work> record(const char* op, std::vector<at::Tensor>& tensors) {
    for (auto& t : tensors) {
      calls_->push_back({op, t.device()});
      if (t.is_meta()) t = torch::zeros(t.sizes(), t.options().device(torch::kCPU));
    }
    return c10::make_intrusive<Done>();
  }

  std::shared_ptr<std::vector<Call>> calls_;
};

// Rank 0 of a pretend 2-rank group on the meta device, and what it recorded.
struct RecordingGroup {
  std::shared_ptr<std::vector<RecordingBackend::Call>> calls =
      std::make_shared<std::vector<RecordingBackend::Call>>();
  ProcessGroup group{0, 2, torch::Device(torch::kMeta),
                     c10::make_intrusive<RecordingBackend>(calls), "recording"};

  // Every recorded tensor was on the group's device; at least one was recorded.
  bool all_on_group_device() const {
    if (calls->empty()) return false;
    for (const auto& call : *calls) {
      if (call.device != group.device()) return false;
    }
    return true;
  }
};

}  // namespace pgolf::testing
