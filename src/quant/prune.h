// Pruning, the two kinds the entries use:
//   Magnitude pruning (spec §3.8; #461, #456, #562): before quantization,
//     zero every entry with |w| below the per-tensor quantile `frac` (0.03)
//     in each 2-D float tensor of more than 65,536 elements. In place.
//   Selective ±1 pruning (§3.9; #1406): after quantization, zero int6 codes
//     of value ±1, cheapest first (cost = row scale²), just enough for the
//     compressed size to meet a byte budget, found by binary search.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <functional>

#include "io/state_dict.h"
#include "quant/int8.h"

namespace pgolf {

inline constexpr double kMagnitudePruneFrac = 0.03;         // PRUNE_FRAC
inline constexpr int64_t kMagnitudePruneMinNumel = 65'536;  // pruned iff numel > this
// #1406's target: int(15.9 * 1024 * 1024), MiB-based and so above the
// 16,000,000-byte decimal cap (a latent bug of the seed; prune against the cap).
inline constexpr int64_t kPr1406SelectivePruneTarget = 16'672'358;

// Whether magnitude pruning touches this tensor: 2-D, float, numel > 65,536.
bool magnitude_prunable(const torch::Tensor& tensor);

// Zeroes |w| < quantile(|w| in fp32, frac) (linear interpolation, strict <)
// in place; returns how many entries it zeroed (already-zero ones included
// only if below the threshold).
int64_t magnitude_prune_tensor(torch::Tensor& tensor, double frac = kMagnitudePruneFrac);

struct MagnitudePruneStats {
  int64_t tensors = 0;   // tensors pruned
  int64_t elements = 0;  // their total size
  int64_t zeroed = 0;    // entries set to zero
};
// Every prunable tensor of `dict`, in place (the tensors are shared, so a
// dict of a live model's parameters prunes the model).
MagnitudePruneStats magnitude_prune(StateDict& dict, double frac = kMagnitudePruneFrac);

// The compressed size of a candidate model (artifact bytes, plus code bytes
// if the budget counts them). Must be deterministic; should grow with the
// number of nonzero codes for the binary search to be meaningful.
using SizeOfModel = std::function<int64_t(const QuantizedModel&)>;

struct SelectivePruneResult {
  int64_t candidates = 0;  // ±1 codes eligible
  int64_t pruned = 0;      // codes zeroed
  int64_t size_before = 0;
  int64_t size_after = 0;
  int64_t size_evaluations = 0;  // calls of size_of
};

// §3.9 on `model` in place. Candidates: every code ±1 of every intN per-row
// entry (#1406: its int6 tensors), in entry order then row-major, sorted
// stably by s_row² (fp16 scale read as fp32). If size(0) <= target nothing is
// pruned; if even size(all) > target all are; otherwise the smallest n with
// size(n) <= target (binary search over n).
SelectivePruneResult selective_prune(QuantizedModel& model, int64_t target_bytes,
                                     const SizeOfModel& size_of);

}  // namespace pgolf
