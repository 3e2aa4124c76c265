// val_loss / val_bpb bookkeeping on real validation text: every target scored
// once, bytes from the tokenizer's tables, the challenge's formula, and the
// same sums whichever way the sequences are split across ranks.
#include <gtest/gtest.h>

#include <cmath>

#include "config/presets.h"
#include "data/shard.h"
#include "data/tokenizer.h"
#include "eval/val_bpb.h"
#include "io/safetensors.h"
#include "model/weights.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

struct Fixture {
  GPT model{nullptr};
  torch::Tensor stream;
  ByteLuts luts;
};

// The golden tiny model on the first 8,193 tokens of the shared val shard.
Fixture make_fixture() {
  Fixture f;
  f.model = GPT(testing::golden_tiny_config());
  const auto golden = testing::shared_dir() / "golden" / "baseline";
  load_state_dict(f.model, read_safetensors(golden / "tiny_weights.safetensors"));
  const auto val = (testing::shared_dir() / "data" / "shards" / "fineweb_val_*.bin").string();
  f.stream = load_validation_tokens(val, 64, 1024).slice(0, 0, 8193);
  f.luts = build_byte_luts(Tokenizer::load(testing::official_tokenizer()), 1024);
  return f;
}

TEST(ValBpb, ScoresEveryTargetOnceWithTheChallengeFormula) {
  PGOLF_REQUIRE_SHARED();
  auto f = make_fixture();
  std::vector<float> losses;
  ValOptions options;
  options.seq_len = 64;
  options.batch_seqs = 16;
  options.token_losses = &losses;
  const ValResult r = evaluate_val(f.model, f.stream, f.luts, options);

  EXPECT_EQ(r.token_count, 8192);
  ASSERT_EQ(losses.size(), 8192u);
  const auto prev = f.stream.slice(0, 0, -1), tgt = f.stream.slice(0, 1);
  EXPECT_DOUBLE_EQ(r.byte_count, target_bytes(f.luts, prev, tgt).sum().item<double>());
  double sum = 0;
  for (float l : losses) sum += l;
  EXPECT_NEAR(r.val_loss, sum / 8192, 1e-5);
  EXPECT_NEAR(r.val_bpb, r.loss_sum / (std::log(2.0) * r.byte_count), 1e-12);
  // The per-token losses are the model's, position by position.
  const auto direct = f.model->token_losses(prev.view({-1, 64}), tgt.view({-1, 64})).reshape({-1});
  EXPECT_NEAR(direct[100].item<double>(), losses[100], 1e-5);
  EXPECT_NEAR(direct[8191].item<double>(), losses[8191], 1e-5);
}

// #1855's eval_val: with document attention each batch of sequences is one
// packed row (its documents cut at their BOS, RoPE positions over the row).
TEST(ValBpb, DocumentAttentionScoresEachBatchAsOnePackedRow) {
  PGOLF_REQUIRE_SHARED();
  auto f = make_fixture();
  ModelConfig config = testing::tiny_pr1855_config();
  config.vocab_size = 1024;
  config.max_doc_len = 64;
  torch::manual_seed(5);
  GPT model(config);
  std::vector<float> losses;
  ValOptions options;
  options.seq_len = 64;
  options.batch_seqs = 16;
  options.token_losses = &losses;
  evaluate_val(model, f.stream.slice(0, 0, 2049), f.luts, options);
  ASSERT_EQ(losses.size(), 2048u);
  const auto x = f.stream.slice(0, 0, 2048).view({2, 1024});
  const auto y = f.stream.slice(0, 1, 2049).view({2, 1024});
  ASSERT_GT(x.eq(1).sum().item<int64_t>(), 0);
  torch::NoGradGuard no_grad;
  const auto packed = torch::cat({model->token_losses(x.narrow(0, 0, 1), y.narrow(0, 0, 1)),
                                  model->token_losses(x.narrow(0, 1, 1), y.narrow(0, 1, 1))},
                                 1)
                          .reshape({-1});
  for (int64_t i : {int64_t{0}, int64_t{700}, int64_t{1500}, int64_t{2047}}) {
    EXPECT_FLOAT_EQ(packed[i].item<float>(), losses[static_cast<size_t>(i)]) << i;
  }
}

TEST(ValBpb, RankSplitsAddUpToTheWhole) {
  PGOLF_REQUIRE_SHARED();
  auto f = make_fixture();
  ValOptions whole;
  whole.seq_len = 64;
  whole.batch_seqs = 32;
  const ValResult all = evaluate_val(f.model, f.stream, f.luts, whole);
  ValResult sum;
  for (int64_t rank = 0; rank < 3; ++rank) {
    ValOptions part = whole;
    part.rank = rank;
    part.world_size = 3;
    part.batch_seqs = 7;
    const ValResult r = evaluate_val(f.model, f.stream, f.luts, part);
    sum.loss_sum += r.loss_sum;
    sum.token_count += r.token_count;
    sum.byte_count += r.byte_count;
  }
  finish(sum);
  EXPECT_EQ(sum.token_count, all.token_count);
  EXPECT_DOUBLE_EQ(sum.byte_count, all.byte_count);
  EXPECT_NEAR(sum.val_bpb, all.val_bpb, 1e-6);
}

TEST(ValBpb, BatchSizeNeedsOneSequencePerRank) {
  EXPECT_EQ(val_batch_seqs(524288, 1, 8, 1024), 64);
  EXPECT_EQ(val_batch_seqs(524288, 8, 1, 2048), 32);
  EXPECT_PGOLF_ERROR(val_batch_seqs(1000, 1, 1, 1024), "VAL_BATCH_SIZE must provide at least one");
}

}  // namespace
}  // namespace pgolf
