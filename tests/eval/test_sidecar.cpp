// val_bpb with a validation byte sidecar (CaseOps data): a target at stream
// position i counts sidecar[i] bytes instead of the piece-length tables, in the
// plain and the sliding evaluation, with the same losses; a sidecar that does
// not fit the stream is an error; and on the record's CaseOps DEV shards the
// sidecar is found beside the val shards and kept out of the token stream.
#include <gtest/gtest.h>

#include <cmath>

#include "config/config.h"
#include "data/shard.h"
#include "data/tokenizer.h"
#include "eval/sliding.h"
#include "eval/val_bpb.h"
#include "io/safetensors.h"
#include "model/weights.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

ValOptions plain_options(int64_t seq_len) {
  ValOptions o;
  o.seq_len = seq_len;
  o.batch_seqs = 16;
  return o;
}

SlidingOptions sliding_options(int64_t window, int64_t stride) {
  SlidingOptions o;
  o.window_len = window;
  o.stride = stride;
  o.batch_seqs = 16;
  return o;
}

// The golden tiny model on the first 4,097 tokens of the shared sp1024 val
// shard, with a made-up sidecar (position i: i * 7 % 11 bytes).
TEST(ValBpbSidecar, ReplacesThePieceTablesInPlainAndSlidingEvaluation) {
  PGOLF_REQUIRE_SHARED();
  GPT model(testing::golden_tiny_config());
  load_state_dict(model, read_safetensors(testing::shared_dir() / "golden/baseline" /
                                          "tiny_weights.safetensors"));
  const auto val = (testing::shared_dir() / "data/shards/fineweb_val_*.bin").string();
  const torch::Tensor stream = load_validation_tokens(val, 64, 1024).slice(0, 0, 4097);
  const ByteLuts tables = build_byte_luts(Tokenizer::load(testing::official_tokenizer()), 1024);
  ByteLuts with_sidecar = tables;
  with_sidecar.sidecar = torch::arange(4097, torch::kInt).mul(7).remainder(11);
  const double sidecar_targets = with_sidecar.sidecar.slice(0, 1).sum().item<double>();

  const ValResult plain = evaluate_val(model, stream, tables, plain_options(64));
  const ValResult plain_sc = evaluate_val(model, stream, with_sidecar, plain_options(64));
  EXPECT_EQ(plain_sc.token_count, 4096);
  EXPECT_EQ(plain_sc.loss_sum, plain.loss_sum);
  EXPECT_EQ(plain_sc.byte_count, sidecar_targets);
  EXPECT_NE(plain_sc.byte_count, plain.byte_count);
  EXPECT_NEAR(plain_sc.val_bpb, plain_sc.loss_sum / (std::log(2.0) * sidecar_targets), 1e-12);

  // Sliding windows score every target once: the same bytes, each from its own position.
  const SlidingResult sliding = evaluate_sliding(model, stream, tables, sliding_options(64, 16));
  const SlidingResult sliding_sc =
      evaluate_sliding(model, stream, with_sidecar, sliding_options(64, 16));
  EXPECT_EQ(sliding_sc.result.token_count, 4096);
  EXPECT_EQ(sliding_sc.result.loss_sum, sliding.result.loss_sum);
  EXPECT_EQ(sliding_sc.result.byte_count, sidecar_targets);
  EXPECT_NEAR(sliding_sc.result.val_bpb,
              sliding_sc.result.loss_sum / (std::log(2.0) * sidecar_targets), 1e-12);

  // Windows that score only part of the stream count exactly their targets' entries.
  WindowScorer scorer(model, stream, with_sidecar, 64, 4);
  const std::vector<Window> windows = {{0, 64, 0}, {100, 64, 48}, {4032, 64, 60}};
  ValResult part;
  scorer.score(windows, part);
  const auto sc = with_sidecar.sidecar;
  const double expected = sc.slice(0, 1, 65).sum().item<double>() +
                          sc.slice(0, 149, 165).sum().item<double>() +
                          sc.slice(0, 4093, 4097).sum().item<double>();
  EXPECT_EQ(part.byte_count, expected);
  EXPECT_EQ(part.token_count, 64 + 16 + 4);
}

TEST(ValBpbSidecar, ASidecarOfAnotherStreamIsAnError) {
  PGOLF_REQUIRE_SHARED();
  GPT model(testing::two_layer_model(ModelConfig{}, 32));
  const auto val = (testing::shared_dir() / "data/shards/fineweb_val_*.bin").string();
  const torch::Tensor stream = load_validation_tokens(val, 64, 1024).slice(0, 0, 1025);
  ByteLuts luts = build_byte_luts(Tokenizer::load(testing::official_tokenizer()), 1024);
  luts.sidecar = torch::ones({1024}, torch::kInt);
  EXPECT_PGOLF_ERROR(evaluate_val(model, stream, luts, plain_options(64)),
                     "the byte sidecar holds 1024 entries but the validation stream 1025 tokens");
  EXPECT_PGOLF_ERROR(evaluate_sliding(model, stream, luts, sliding_options(64, 32)),
                     "loaded for another stream");
}

// The record's CaseOps DEV shards (../shared/data/caseops/shards): the val glob
// also matches the sidecar, which must not be read as tokens; the sidecar is
// found and cut to the stream; val_bpb divides by its bytes.
TEST(ValBpbSidecar, CaseOpsDevShards) {
  PGOLF_REQUIRE_SHARED();
  const auto caseops = testing::shared_dir() / "data/caseops";
  Config config;
  config.data.data_path = (caseops / "shards").string();
  config.data.tokenizer_path =
      (caseops / "tokenizers/fineweb_8192_bpe_lossless_caps_caseops_v1_reserved.model").string();
  config.model = testing::two_layer_model(ModelConfig{}, 32);
  config.model.vocab_size = 8192;
  config.train.train_seq_len = 64;

  const torch::Tensor whole = validation_stream(config);
  EXPECT_EQ(whole.numel(), (575'781 - 1) / 64 * 64 + 1);  // the val shard only
  const Tokenizer tokenizer = Tokenizer::load(config.data.tokenizer_path);
  const ByteLuts whole_luts = validation_byte_luts(config, tokenizer, whole);
  ASSERT_TRUE(whole_luts.sidecar.defined());
  EXPECT_EQ(whole_luts.sidecar.numel(), whole.numel());
  const auto sidecar = read_shard(caseops / "shards/fineweb_val_bytes_000000.bin", 0);
  EXPECT_EQ(whole_luts.sidecar[12345].item<int>(), sidecar[12345]);

  config.eval.val_max_tokens = 2048;
  const torch::Tensor stream = validation_stream(config);
  const ByteLuts luts = validation_byte_luts(config, tokenizer, stream);
  ASSERT_EQ(luts.sidecar.numel(), 2049);
  int64_t expected_bytes = 0;
  for (int64_t i = 1; i < 2049; ++i) expected_bytes += sidecar[static_cast<size_t>(i)];

  torch::manual_seed(0);
  GPT model(config.model);
  const ValResult plain = evaluate_val(model, stream, luts, plain_options(64));
  EXPECT_EQ(plain.byte_count, static_cast<double>(expected_bytes));
  EXPECT_NEAR(plain.val_bpb, plain.loss_sum / (std::log(2.0) * expected_bytes), 1e-12);
  const SlidingResult sliding = evaluate_sliding(model, stream, luts, sliding_options(64, 32));
  EXPECT_EQ(sliding.result.byte_count, static_cast<double>(expected_bytes));

  // sp1024 data has no sidecar: the tables count.
  Config sp1024;
  sp1024.data.data_path = (testing::shared_dir() / "data/shards").string();
  sp1024.train.train_seq_len = 64;
  const torch::Tensor sp_stream = validation_stream(sp1024);
  EXPECT_FALSE(
      validation_byte_luts(sp1024, Tokenizer::load(testing::official_tokenizer()), sp_stream)
          .sidecar.defined());
}

}  // namespace
}  // namespace pgolf
