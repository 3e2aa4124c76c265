// Where a step's time goes, by operator: LibTorch's profiler around a
// function, reduced to self time per op name (time in the op minus time in
// the ops it called), largest first. `pgolf bench --profile` prints it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace pgolf {

struct OpCost {
  std::string name;  // "aten::mm", "autograd::engine::evaluate_function: MmBackward0", ...
  int64_t calls = 0;
  double self_ms = 0;
  double total_ms = 0;  // inclusive; summed over calls (nested calls of one name count twice)
};

// Runs `fn` under the CPU profiler; every op's cost, by self time, largest first.
std::vector<OpCost> profile_ops(const std::function<void()>& fn);

// The first `top` rows with each one's share of the summed self time.
std::string format_op_profile(const std::vector<OpCost>& costs, size_t top);

}  // namespace pgolf
