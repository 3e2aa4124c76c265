// Window plans (spec quantize-eval-ttt §2.1-2.2, §5.1): the exact plan scores
// every target once with the most context a window can give; the reference
// plan reproduces the entries' counts, over-counted tail included.
#include <gtest/gtest.h>

#include <tuple>

#include "eval/ttt.h"
#include "eval/windows.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

std::vector<int> coverage(const std::vector<Window>& windows, int64_t T) {
  std::vector<int> seen(static_cast<size_t>(T + 1), 0);
  for (const auto& w : windows) {
    for (int64_t t = w.first_target(); t <= w.last_target(); ++t) ++seen[t];
  }
  return seen;
}

class ExactPlan : public ::testing::TestWithParam<std::tuple<int64_t, int64_t, int64_t>> {};

TEST_P(ExactPlan, ScoresEveryTargetOnceWithFullContext) {
  const auto [T, L, stride] = GetParam();
  const auto windows = exact_windows(T, L, stride);
  const auto seen = coverage(windows, T);
  EXPECT_EQ(seen[0], 0);
  for (int64_t t = 1; t <= T; ++t) ASSERT_EQ(seen[t], 1) << "target " << t;
  for (size_t i = 0; i < windows.size(); ++i) {
    const Window& w = windows[i];
    EXPECT_LE(w.len, L);
    EXPECT_LE(w.start + w.len, T);
    if (i > 0) {
      EXPECT_EQ(w.len, L);                  // every later window is full length
      EXPECT_GE(w.score_from, L - stride);  // so each target sees >= L - stride tokens before it
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Geometries, ExactPlan,
                         ::testing::Values(std::make_tuple(4096, 256, 64),
                                           std::make_tuple(4100, 256, 64),  // ragged tail
                                           std::make_tuple(100, 256, 64),   // shorter than L
                                           std::make_tuple(1000, 64, 64),   // stride = L
                                           std::make_tuple(999, 64, 7),
                                           std::make_tuple(65, 64, 1)));

TEST(ReferencePlan, CountsTheEntriesTokensAndWindows) {
  // The reference T of the challenge's validation split (§1.7, §5.1).
  const int64_t T = 62'021'632, L = 2048;
  const auto s64 = reference_windows(T, L, 64);
  EXPECT_EQ(static_cast<int64_t>(s64.size()), 969'088);  // ttt_sliding:start total_windows
  int64_t scored = 0;
  for (const auto& w : s64) scored += w.scored();
  EXPECT_EQ(scored, T + 1'984);  // the last 64 targets 32 times
  int64_t scored128 = 0;
  for (const auto& w : reference_windows(T, L, 128)) scored128 += w.scored();
  EXPECT_EQ(scored128, T + 1'920);

  const auto chunks = windows_by_chunk(s64, 32'768, (T + 32'767) / 32'768);
  ASSERT_EQ(chunks.size(), 1'893u);
  EXPECT_EQ(chunks[0].size(), 481u);
  EXPECT_EQ(chunks[1].size(), 512u);
  EXPECT_EQ(chunks[1891].size(), 512u);
  EXPECT_EQ(chunks[1892].size(), 415u);
}

TEST(ReferencePlan, IsTheExactPlanPlusTheTailWhenStrideDividesT) {
  const int64_t T = 8192, L = 512, stride = 64;
  const auto exact = exact_windows(T, L, stride);
  std::vector<Window> full;
  for (const auto& w : reference_windows(T, L, stride)) {
    if (w.start == 0 || w.len == L) full.push_back(w);
  }
  EXPECT_EQ(full, exact);
}

TEST(WindowPlans, RejectImpossibleGeometry) {
  EXPECT_PGOLF_ERROR(exact_windows(100, 64, 0), "EVAL_STRIDE");
  EXPECT_PGOLF_ERROR(exact_windows(100, 64, 65), "EVAL_STRIDE");
  EXPECT_PGOLF_ERROR(reference_windows(0, 64, 64), "no targets");
}

TEST(RankShare, SplitsContiguouslyAndCoversAll) {
  for (int64_t world : {1, 3, 8}) {
    int64_t next = 0;
    for (int64_t r = 0; r < world; ++r) {
      const Range share = rank_share(1001, r, world);
      EXPECT_EQ(share.begin, next);
      next = share.end;
    }
    EXPECT_EQ(next, 1001);
  }
}

}  // namespace
}  // namespace pgolf
