// The legality audit (spec quantize-eval-ttt §5.0): an update may read only
// positions that have been scored; the audit records chunk by chunk and
// catches any other order.
#include <gtest/gtest.h>

#include "eval/legality.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

TEST(LegalityAudit, ScoreThenTrainIsScoreFirst) {
  LegalityAudit audit(/*stream_len=*/101, /*chunk_tokens=*/50);  // targets 1..100, 2 chunks
  audit.scored(1, 50);
  EXPECT_TRUE(audit.used_for_update(0, 50));  // inputs 0..49, targets 1..50
  audit.scored(51, 100);
  const auto& r = audit.report();
  EXPECT_TRUE(r.score_first);
  EXPECT_EQ(r.updates, 1);
  EXPECT_EQ(r.violations, 0);
  ASSERT_EQ(r.chunks.size(), 2u);
  EXPECT_EQ(r.chunks[0].scored_event, 0);
  EXPECT_EQ(r.chunks[0].first_update_event, 1);
  EXPECT_EQ(r.chunks[0].first_target, 1);
  EXPECT_EQ(r.chunks[0].last_target, 50);
  EXPECT_EQ(r.chunks[1].scored_event, 2);
  EXPECT_EQ(r.chunks[1].updates, 0);  // the last chunk is never trained on
  EXPECT_TRUE(r.to_json()["score_first"].get<bool>());
}

TEST(LegalityAudit, TrainingBeforeScoringIsCaught) {
  LegalityAudit audit(101, 50);
  EXPECT_FALSE(audit.used_for_update(0, 50));
  audit.scored(1, 50);
  const auto& r = audit.report();
  EXPECT_FALSE(r.score_first);
  EXPECT_EQ(r.violations, 1);
  EXPECT_NE(r.first_violation.find("position 1 had not been scored"), std::string::npos)
      << r.first_violation;
}

TEST(LegalityAudit, OneUnscoredTokenInsideAScoredRangeIsCaught) {
  LegalityAudit audit(101, 50);
  audit.scored(1, 40);
  audit.scored(42, 100);  // 41 never scored
  EXPECT_TRUE(audit.used_for_update(0, 40));
  EXPECT_FALSE(audit.used_for_update(30, 60));
  EXPECT_NE(audit.report().first_violation.find("position 41"), std::string::npos);
}

TEST(LegalityAudit, RejectsPositionsOutsideTheStream) {
  LegalityAudit audit(101, 50);
  EXPECT_PGOLF_ERROR(audit.scored(0, 10), "outside the stream");
  EXPECT_PGOLF_ERROR(audit.used_for_update(90, 101), "outside the stream");
}

}  // namespace
}  // namespace pgolf
