// Synthetic training shards whose token values equal their stream positions,
// so that a batch shows exactly which part of the stream it came from.
#pragma once

#include <numeric>
#include <string>
#include <vector>

#include "data/shard.h"
#include "tests/test_util.h"

namespace pgolf::testing {

// Shards train_000000.bin... of the given sizes; token value = global position.
inline std::string write_position_shards(const ScratchDir& dir, const std::vector<int>& sizes) {
  uint16_t next = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    std::vector<uint16_t> tokens(static_cast<size_t>(sizes[i]));
    std::iota(tokens.begin(), tokens.end(), next);
    next = static_cast<uint16_t>(next + sizes[i]);
    write_shard(dir / ("train_00000" + std::to_string(i) + ".bin"), tokens);
  }
  return (dir / "train_*.bin").string();
}

}  // namespace pgolf::testing
