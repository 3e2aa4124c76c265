#include "eval/windows.h"

#include <algorithm>

#include "common/error.h"

namespace pgolf {
namespace {

void check_geometry(int64_t targets, int64_t window_len, int64_t stride) {
  PGOLF_CHECK(targets > 0, "the validation stream has no targets");
  PGOLF_CHECK(window_len > 0, "window length {} must be positive", window_len);
  PGOLF_CHECK(stride > 0 && stride <= window_len, "EVAL_STRIDE={} must be in [1, window length {}]",
              stride, window_len);
}

}  // namespace

std::vector<Window> exact_windows(int64_t T, int64_t L, int64_t stride) {
  check_geometry(T, L, stride);
  std::vector<Window> out;
  out.push_back({0, std::min(L, T), 0});
  int64_t covered = out.back().last_target();  // targets 1..covered are scored
  for (int64_t ws = stride; ws + L <= T; ws += stride) {
    out.push_back({ws, L, L - stride});
    covered = ws + L;
  }
  if (covered < T) {
    const int64_t ws = T - L;  // > 0: the first window did not reach T
    out.push_back({ws, L, covered - ws});
  }
  return out;
}

std::vector<Window> reference_windows(int64_t T, int64_t L, int64_t stride) {
  check_geometry(T, L, stride);
  std::vector<Window> out;
  for (int64_t ws = 0; ws < T; ws += stride) {
    const int64_t len = std::min(ws + L, T) - ws;
    if (ws != 0 && len < stride) continue;  // the F2 filter
    out.push_back({ws, len, ws == 0 ? 0 : std::max<int64_t>(len - stride, 0)});
  }
  return out;
}

Range rank_share(int64_t n, int64_t rank, int64_t world) {
  return {n * rank / world, n * (rank + 1) / world};
}

}  // namespace pgolf
