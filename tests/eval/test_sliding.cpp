// Sliding-window evaluation (spec quantize-eval-ttt §2): the same sums as the
// plain evaluation when stride = window, a better score for a trained model
// with more context, the references' tail behind its flag, NTK for long windows.
#include <gtest/gtest.h>

#include "eval/final_eval.h"
#include "eval/sliding.h"
#include "tests/eval/eval_fixture.h"

namespace pgolf {
namespace {

SlidingOptions options(int64_t L, int64_t stride, bool reference_tail = false) {
  SlidingOptions o;
  o.window_len = L;
  o.stride = stride;
  o.batch_seqs = 16;
  o.reference_tail = reference_tail;
  return o;
}

TEST(Sliding, StrideEqualToTheWindowIsThePlainEvaluation) {
  PGOLF_REQUIRE_SHARED();
  auto f = testing::trained_fixture();
  const ValResult plain = testing::plain_eval(f, 64);
  const SlidingResult sliding = evaluate_sliding(f.model, f.stream, f.luts, options(64, 64));
  EXPECT_EQ(sliding.result.token_count, plain.token_count);
  EXPECT_DOUBLE_EQ(sliding.result.byte_count, plain.byte_count);
  EXPECT_NEAR(sliding.result.loss_sum, plain.loss_sum, 1e-6 * plain.loss_sum);
  EXPECT_NEAR(sliding.result.val_bpb, plain.val_bpb, 1e-6);
  EXPECT_EQ(sliding.windows, plain.token_count / 64);
}

TEST(Sliding, MoreContextScoresATrainedModelBetter) {
  PGOLF_REQUIRE_SHARED();
  auto f = testing::trained_fixture();
  const ValResult plain = testing::plain_eval(f, 64);
  const SlidingResult sliding = evaluate_sliding(f.model, f.stream, f.luts, options(64, 16));
  EXPECT_EQ(sliding.result.token_count, plain.token_count);  // every target once
  EXPECT_DOUBLE_EQ(sliding.result.byte_count, plain.byte_count);
  EXPECT_LT(sliding.result.val_bpb, plain.val_bpb - 0.002)
      << "sliding " << sliding.result.val_bpb << " plain " << plain.val_bpb;
}

TEST(Sliding, ReferenceTailCountsTheLastBlockAgainAndReportsBoth) {
  PGOLF_REQUIRE_SHARED();
  auto f = testing::trained_fixture();
  const int64_t T = f.stream.numel() - 1;  // 16,384: a multiple of the stride
  const SlidingResult once = evaluate_sliding(f.model, f.stream, f.luts, options(64, 16));
  const SlidingResult ref = evaluate_sliding(f.model, f.stream, f.luts, options(64, 16, true));
  EXPECT_EQ(once.result.token_count, T);
  EXPECT_EQ(ref.result.token_count, T + (64 / 16 - 1) * 16);
  EXPECT_EQ(ref.exact.token_count, T);
  EXPECT_NEAR(ref.exact.val_bpb, once.result.val_bpb, 1e-12);
  EXPECT_NE(ref.result.val_bpb, ref.exact.val_bpb);
}

TEST(Sliding, LongWindowsUseTheNtkBaseAndRestoreIt) {
  PGOLF_REQUIRE_SHARED();
  auto f = testing::trained_fixture();
  Config c = f.config;
  c.eval.eval_stride = 64;
  c.eval.eval_seq_len = 256;  // 4x the training length
  FinalEvalOptions fe;
  std::vector<std::string> lines;
  fe.print = [&](const std::string& l) { lines.push_back(l); };
  fe.quiet = true;
  const auto ntk = run_final_evaluation(f.model, f.stream, f.luts, c, fe);
  EXPECT_EQ(f.model->config().rope_ntk_ref_len, 0);  // restored
  c.eval.eval_ntk = false;
  const auto plain_rope = run_final_evaluation(f.model, f.stream, f.luts, c, fe);
  ASSERT_TRUE(ntk.sliding && plain_rope.sliding);
  EXPECT_EQ(ntk.sliding->result.token_count, f.stream.numel() - 1);
  EXPECT_NE(ntk.sliding->result.val_bpb, plain_rope.sliding->result.val_bpb);
  EXPECT_NE(lines.front().find("eval_seq_len:256 (train 64) rope:ntk ref 64"), std::string::npos)
      << lines.front();
  // The headline lines carry the reference's names and 8 decimals.
  bool found = false;
  for (const auto& l : lines) found |= l.rfind("final_sliding_window_exact val_loss:", 0) == 0;
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace pgolf
