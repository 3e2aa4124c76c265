// The FLOP counts behind MFU, worked by hand for the baseline model:
// 9 layers, D = 512, kv_dim = 256, MLP hidden 1024, V = 1024, T = 1024.
#include <gtest/gtest.h>

#include "common/error.h"
#include "config/presets.h"
#include "model/flops.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

TEST(Flops, BaselineForwardPerToken) {
  const ModelConfig c = preset("baseline").model;
  // Per layer 2 * (512² q + 2·512·256 k,v + 512² proj + 2·512·1024 MLP) = 3,670,016,
  // times 9; the head 2·1024·512 = 1,048,576; attention 9 · 2·512·1025 = 9,446,400.
  EXPECT_DOUBLE_EQ(forward_flops_per_token(c, 1024), 9 * 3'670'016.0 + 1'048'576 + 9'446'400);
  EXPECT_DOUBLE_EQ(training_flops_per_token(c, 1024), 3 * 43'525'120.0);
}

TEST(Flops, ScoringTheLastPositionsSkipsTheLastLayersOtherRows) {
  const ModelConfig c = preset("baseline").model;
  const double full = scoring_window_flops(c, 1024, 1024);
  EXPECT_DOUBLE_EQ(full, 1024 * forward_flops_per_token(c, 1024));
  // Scoring 64 of 1024: the last layer's q, proj and MLP (2 · 1,572,864) and the
  // head (1,048,576) skip 960 rows, and attention rows 0..959 (2·512·960·961).
  EXPECT_DOUBLE_EQ(scoring_window_flops(c, 1024, 64),
                   full - 960 * (2 * 1'572'864.0 + 1'048'576) - 2.0 * 512 * 960 * 961);
  EXPECT_PGOLF_ERROR(scoring_window_flops(c, 1024, 0), "scored 0 outside [1, 1024]");
  EXPECT_PGOLF_ERROR(scoring_window_flops(c, 1024, 1025), "scored 1025 outside");
}

}  // namespace
}  // namespace pgolf
