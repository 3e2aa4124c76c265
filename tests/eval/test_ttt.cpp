// Score-first TTT end to end on a trained tiny model (spec quantize-eval-ttt
// §5.1-5.5): every mode adapts score-first (audited), never trains on the
// last chunk, improves the held-out score; zero epochs is exactly the sliding
// evaluation; a deliberately wrong order stops the run; the NON-COMPLIANT
// modes need their flag and are reported as not score-first.
#include <gtest/gtest.h>

#include <cmath>

#include "eval/sliding.h"
#include "eval/ttt.h"
#include "eval/val_adapt.h"
#include "tests/eval/eval_fixture.h"

namespace pgolf {
namespace {

TttOptions ttt_options(const std::string& mode) {
  TttOptions o;
  o.ttt.mode = parse_name<TttMode>(mode, "mode");
  o.ttt.chunk_tokens = 1024;  // 16 chunks of 16 training sequences
  o.ttt.batch_seqs = 16;
  o.ttt.epochs = 2;
  o.ttt.lr = mode == "sgd" ? 0.02 : mode == "adamw" ? 3e-4 : 0.002;
  o.ttt.momentum = 0.9;
  o.train_seq_len = 64;
  o.window_len = 64;
  o.stride = 16;
  o.eval_batch_seqs = 32;
  o.ns_dtype = torch::kFloat;
  return o;
}

double sliding_bpb(testing::TrainedFixture& f) {
  SlidingOptions so;
  so.window_len = 64;
  so.stride = 16;
  so.batch_seqs = 32;
  return evaluate_sliding(f.model, f.stream, f.luts, so).result.val_bpb;
}

class TttMode : public ::testing::TestWithParam<std::string> {};

TEST_P(TttMode, AdaptsScoreFirstAndImprovesHeldOutText) {
  PGOLF_REQUIRE_SHARED();
  auto f = testing::trained_fixture();
  const double before = sliding_bpb(f);
  auto o = ttt_options(GetParam());
  if (GetParam() == "muon") o.ttt.entropy_adapt = true;
  const TttResult r = score_first_ttt(f.model, f.stream, f.luts, o);

  EXPECT_EQ(r.chunks, 16);
  EXPECT_EQ(r.trained_chunks, 15);  // all but the last
  EXPECT_EQ(r.result.token_count, f.stream.numel() - 1);
  EXPECT_TRUE(r.legality.score_first);
  EXPECT_EQ(r.legality.violations, 0);
  ASSERT_EQ(r.legality.chunks.size(), 16u);
  EXPECT_EQ(r.legality.chunks.back().updates, 0);
  for (size_t c = 0; c + 1 < r.legality.chunks.size(); ++c) {
    EXPECT_LT(r.legality.chunks[c].scored_event, r.legality.chunks[c].first_update_event);
  }
  EXPECT_LT(r.result.val_bpb, before)
      << GetParam() << ": TTT " << r.result.val_bpb << " vs sliding " << before;
  // The model is adapted: its plain sliding score moved too.
  EXPECT_NE(sliding_bpb(f), before);
}

INSTANTIATE_TEST_SUITE_P(Modes, TttMode, ::testing::Values("sgd", "adamw", "muon"));

TEST(Ttt, ZeroEpochsIsTheSlidingEvaluation) {
  PGOLF_REQUIRE_SHARED();
  auto f = testing::trained_fixture();
  SlidingOptions so;
  so.window_len = 64;
  so.stride = 16;
  so.batch_seqs = 32;
  const ValResult sliding = evaluate_sliding(f.model, f.stream, f.luts, so).result;
  auto o = ttt_options("sgd");
  o.ttt.epochs = 0;
  const TttResult r = score_first_ttt(f.model, f.stream, f.luts, o);
  EXPECT_EQ(r.steps, 0);
  EXPECT_EQ(r.result.token_count, sliding.token_count);
  EXPECT_DOUBLE_EQ(r.result.byte_count, sliding.byte_count);
  EXPECT_NEAR(r.result.loss_sum, sliding.loss_sum, 1e-9 * sliding.loss_sum);
}

TEST(Ttt, TrainingBeforeScoringStopsTheRun) {
  PGOLF_REQUIRE_SHARED();
  auto f = testing::trained_fixture();
  auto o = ttt_options("sgd");
  o.deliberately_train_first = true;
  EXPECT_PGOLF_ERROR(score_first_ttt(f.model, f.stream, f.luts, o),
                     "legality: TTT was about to train on tokens that have not been scored");
}

TEST(Ttt, FrozenBlocksStayUnchanged) {
  PGOLF_REQUIRE_SHARED();
  auto f = testing::trained_fixture();
  const auto before = f.model->named_parameters()["blocks.0.attn.c_q.weight"].clone();
  const auto other = f.model->named_parameters()["blocks.1.attn.c_q.weight"].clone();
  auto o = ttt_options("sgd");
  o.ttt.freeze_blocks = 1;
  const TttResult r = score_first_ttt(f.model, f.stream, f.luts, o);
  EXPECT_GT(r.frozen, 0);
  EXPECT_TRUE(torch::equal(f.model->named_parameters()["blocks.0.attn.c_q.weight"], before));
  EXPECT_FALSE(torch::equal(f.model->named_parameters()["blocks.1.attn.c_q.weight"], other));
  EXPECT_TRUE(f.model->named_parameters()["blocks.0.attn.c_q.weight"].requires_grad());
}

TEST(Ttt, EntropyEpochsAndSchedules) {
  EXPECT_EQ(entropy_adapted_epochs(2.2, 3), 4);
  EXPECT_EQ(entropy_adapted_epochs(1.7, 3), 2);
  EXPECT_EQ(entropy_adapted_epochs(1.7, 1), 1);
  EXPECT_EQ(entropy_adapted_epochs(1.9, 3), 3);
  TttConfig c;
  c.lr = 0.01;
  c.schedule = TttSchedule::kChunk;
  EXPECT_DOUBLE_EQ(ttt_learning_rate(c, 0, 11, 0, 0), 0.01);
  EXPECT_NEAR(ttt_learning_rate(c, 5, 11, 0, 0), 0.005, 1e-15);
  EXPECT_NEAR(ttt_learning_rate(c, 10, 11, 0, 0), 0.0, 1e-15);
  c.schedule = TttSchedule::kStep;
  EXPECT_NEAR(ttt_learning_rate(c, 3, 11, 50, 100), 0.005, 1e-15);
  c.schedule = TttSchedule::kConstant;
  EXPECT_DOUBLE_EQ(ttt_learning_rate(c, 10, 11, 99, 100), 0.01);
}

TEST(ValAdapt, NeedsItsFlagAndIsNotScoreFirst) {
  PGOLF_REQUIRE_SHARED();
  auto f = testing::trained_fixture();
  TttConfig c;
  c.val_adapt = ValAdapt::kPostquant;
  c.val_adapt_epochs = 1;
  EXPECT_PGOLF_ERROR(c.validate(), "ALLOW_NON_COMPLIANT=1");
  EXPECT_PGOLF_ERROR(adapt_on_validation(f.model, f.stream, c, 64, nullptr, {}),
                     "ALLOW_NON_COMPLIANT=1");
  c.allow_non_compliant = true;
  c.validate();
  std::vector<std::string> lines;
  const ValAdaptResult r = adapt_on_validation(f.model, f.stream, c, 64, nullptr,
                                               [&](const std::string& l) { lines.push_back(l); });
  EXPECT_EQ(r.steps, 8);  // 256 sequences / 32
  EXPECT_FALSE(r.legality.score_first);
  EXPECT_NE(lines.front().find("WARNING: NON-COMPLIANT"), std::string::npos);
  EXPECT_NE(r.to_json()["non_compliant"].get<std::string>().find("#562"), std::string::npos);
}

}  // namespace
}  // namespace pgolf
