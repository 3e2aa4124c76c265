// Sliding-window plans (spec quantize-eval-ttt §2.1-2.2).
//
// The validation stream V has T = len(V) - 1 targets. A window starting at
// `start` reads `len` <= L input tokens V[start, start+len) and scores its
// in-window positions [score_from, len), i.e. the targets
// V[start+score_from+1 .. start+len]; each prediction sees every earlier input
// of its window.
//
// exact_windows() scores every target exactly once: windows start at 0,
// stride, 2*stride, ... while they fit, each scoring its last `stride`
// positions (the first scores all of its own), then one last full-length
// window ending at T scores whatever is left.
//
// reference_windows() is the entries' plan (F2 filter): starts every `stride`
// up to T, every window after the first scores its last `stride` positions,
// so the partial windows at the end score the same last block again (with
// T mod stride = 0 the last `stride` targets count L/stride times).
#pragma once

#include <cstdint>
#include <vector>

namespace pgolf {

struct Window {
  int64_t start = 0;
  int64_t len = 0;         // input tokens, <= L
  int64_t score_from = 0;  // first scored in-window position

  int64_t first_target() const { return start + score_from + 1; }  // stream index
  int64_t last_target() const { return start + len; }              // inclusive
  int64_t scored() const { return len - score_from; }
  bool operator==(const Window&) const = default;
};

// `targets` = T = len(V) - 1; `window_len` = L; 0 < stride <= L.
std::vector<Window> exact_windows(int64_t targets, int64_t window_len, int64_t stride);
std::vector<Window> reference_windows(int64_t targets, int64_t window_len, int64_t stride);

// ceil(a / b) for b > 0: how many pieces of b cover a.
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Contiguous share `rank` of `n` items over `world` ranks: [n*r/W, n*(r+1)/W),
// the reference's part().
struct Range {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t size() const { return end - begin; }
};
Range rank_share(int64_t n, int64_t rank, int64_t world);

}  // namespace pgolf
