// #1855's model (docs/entries/pr1855.md §2-3): the preset's state dict, the
// looped schedule, document segments, the BOS-masked smear, the lanes, and one
// clear error per impossible setting. Parity with the record's own forward is
// in test_pr1855_parity.cpp.
#include <gtest/gtest.h>

#include <vector>

#include "config/presets.h"
#include "model/documents.h"
#include "model/embeddings.h"
#include "model/gpt.h"
#include "model/weights.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

TEST(Pr1855Model, StateDictIsTheRecordsKeysShapesAndOrder) {
  const Config config = preset("pr1855");
  torch::manual_seed(config.train.seed);
  GPT model(config.model);
  const auto sd = state_dict(model);
  EXPECT_EQ(parameter_count(model), 35'945'671);
  ASSERT_EQ(sd.size(), 66u);
  const std::vector<std::pair<std::string, std::vector<int64_t>>> head = {
      {"qo_bank", {22, 512, 512}},
      {"kv_bank", {22, 256, 512}},
      {"mlp_up_bank", {11, 2048, 512}},
      {"mlp_down_bank", {11, 512, 2048}},
      {"skip_weights", {8, 512}},
      {"skip_gates", {8, 512}},
      {"parallel_post_lambdas", {11, 2, 2}},
      {"parallel_resid_lambdas", {11, 2}},
      {"smear_lambda", {1}},
      {"tok_emb.weight", {8192, 512}},
      {"blocks.0.attn_scale", {512}},
      {"blocks.0.mlp_scale", {512}},
      {"blocks.0.resid_mix", {2, 512}},
      {"blocks.0.attn.q_gain", {8}},
      {"blocks.0.attn.attn_gate_w", {8, 12}},
  };
  for (size_t i = 0; i < head.size(); ++i) {
    EXPECT_EQ(sd[i].first, head[i].first) << i;
    EXPECT_EQ(sd[i].second.sizes().vec(), head[i].second) << head[i].first;
  }
  EXPECT_EQ(sd[64].first, "blocks.10.attn.attn_gate_w");
  EXPECT_EQ(sd[65].first, "smear_gate.weight");
  EXPECT_EQ(sd[65].second.sizes().vec(), (std::vector<int64_t>{1, 12}));
  // 1.1 through the reference's bf16 round trip; gates and lambdas at zero.
  EXPECT_TRUE(find_tensor(sd, "parallel_resid_lambdas").eq(1.1015625).all().item<bool>());
  for (const char* zero : {"skip_gates", "smear_lambda", "smear_gate.weight",
                           "blocks.3.attn.attn_gate_w", "mlp_down_bank"}) {
    EXPECT_EQ(find_tensor(sd, zero).abs().max().item<double>(), 0.0) << zero;
  }
}

TEST(Pr1855Model, LoopedScheduleIsTheLogsEncoderAndDecoder) {
  const ModelConfig m = preset("pr1855").model;
  EXPECT_EQ(m.encoder_passes(true), (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 3, 4}));
  EXPECT_EQ(m.decoder_passes(true), (std::vector<int64_t>{5, 3, 4, 5, 6, 7, 8, 9, 10}));
  EXPECT_EQ(m.encoder_passes(false), (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(m.decoder_passes(false), (std::vector<int64_t>{5, 6, 7, 8, 9, 10}));
  EXPECT_EQ(m.num_skip_weights(), 8);
  EXPECT_EQ(m.passes(true).size(), 17u);
}

TEST(Pr1855Model, ImpossibleSettingsGiveOneClearError) {
  auto with = [](auto edit) {
    ModelConfig m = preset("pr1855").model;
    edit(m);
    return m;
  };
  EXPECT_PGOLF_ERROR(with([](ModelConfig& m) { m.loop_end = 11; }).validate(),
                     "LOOP_START=3..LOOP_END=11 must be a range of blocks inside NUM_LAYERS=11");
  EXPECT_PGOLF_ERROR(with([](ModelConfig& m) { m.loop_start = 6; }).validate(),
                     "LOOP_START=6..LOOP_END=5");
  EXPECT_PGOLF_ERROR(with([](ModelConfig& m) { m.gate_window = 513; }).validate(),
                     "GATE_WINDOW=513 must be in [1, MODEL_DIM=512]");
  EXPECT_PGOLF_ERROR(with([](ModelConfig& m) { m.parallel_start_layer = 11; }).validate(),
                     "PARALLEL_START_LAYER=11 must be a block index below NUM_LAYERS=11");
  EXPECT_PGOLF_ERROR(with([](ModelConfig& m) { m.parallel_start_layer = 5; }).validate(),
                     "PARALLEL_START_LAYER=5 must come after the loop (LOOP_END=5)");
  EXPECT_PGOLF_ERROR(with([](ModelConfig& m) { m.smear_gate = true; }).validate(),
                     "two smear gates");
  EXPECT_PGOLF_ERROR(with([](ModelConfig& m) { m.recur_layers = "4"; }).validate(),
                     "NUM_LOOPS and RECUR_LAYERS are two recurrences");
}

TEST(DocumentSegments, AreTheRecordsCuSeqlens) {
  // BOS at 0, 3 and 9 in a row of 16, cap 4: documents [0,3) [3,9) [9,16)
  // cut every 4 tokens from their starts.
  auto ids = torch::full({2, 16}, 7, torch::kLong);
  for (int64_t t : {0, 3, 9}) ids[0][t] = kBosId;
  ids[1][5] = kBosId;  // row 1 starts mid-document
  const auto cu = document_segments(ids, 4);
  EXPECT_EQ(cu[0], (std::vector<int64_t>{0, 3, 7, 9, 13, 16}));
  EXPECT_EQ(cu[1], (std::vector<int64_t>{0, 4, 5, 9, 13, 16}));
  EXPECT_EQ(document_segments(ids, 0)[0], (std::vector<int64_t>{0, 3, 9, 16}));
}

TEST(DocumentSegments, AttentionEqualsABlockDiagonalCausalMask) {
  torch::manual_seed(3);
  const auto q = torch::randn({2, 4, 16, 8}, torch::kDouble);
  const auto k = torch::randn({2, 2, 16, 8}, torch::kDouble);
  const auto v = torch::randn({2, 2, 16, 8}, torch::kDouble);
  const std::vector<std::vector<int64_t>> cu = {{0, 3, 7, 16}, {0, 16}};
  const auto y = segmented_causal_attention(q, k, v, cu);
  auto mask = torch::zeros({2, 1, 16, 16}, torch::kBool);
  for (int64_t b = 0; b < 2; ++b) {
    for (size_t s = 0; s + 1 < cu[b].size(); ++s) {
      for (int64_t i = cu[b][s]; i < cu[b][s + 1]; ++i) {
        for (int64_t j = cu[b][s]; j <= i; ++j) mask[b][0][i][j] = true;
      }
    }
  }
  const auto expected = at::scaled_dot_product_attention(q, k.repeat_interleave(2, 1),
                                                         v.repeat_interleave(2, 1), mask);
  EXPECT_LT((y - expected).abs().max().item<double>(), 1e-12);
}

TEST(BosMaskedSmear, NeverCrossesABosAndIsTheIdentityAtInit) {
  torch::manual_seed(5);
  const auto e = torch::randn({1, 6, 16}, torch::kDouble);
  auto ids = torch::full({1, 6}, 9, torch::kLong);
  ids[0][3] = kBosId;
  const auto w = torch::randn({1, 4}, torch::kDouble);
  const auto lambda = torch::full({1}, 0.7, torch::kDouble);
  const auto x = bos_masked_smear(e, ids, w, lambda);
  EXPECT_TRUE(x[0][0].equal(e[0][0]));
  EXPECT_TRUE(x[0][3].equal(e[0][3]));  // the BOS takes nothing from the document before it
  const auto g = 0.7 * torch::sigmoid((e[0][4].narrow(0, 0, 4) * w[0]).sum());
  EXPECT_LT((x[0][4] - (e[0][4] + g * e[0][3])).abs().max().item<double>(), 1e-12);
  EXPECT_TRUE(bos_masked_smear(e, ids, w, torch::zeros({1}, torch::kDouble)).equal(e));
}

// A model built from the tiny #1855 config, with every zero-initialised path
// made live.
GPT live_tiny_pr1855() {
  torch::manual_seed(21);
  GPT model(testing::tiny_pr1855_config());
  torch::NoGradGuard no_grad;
  for (auto& p : model->parameters()) p.add_(torch::randn_like(p) * 0.05);
  return model;
}

TEST(Pr1855Model, DocumentsDoNotSeeEachOther) {
  // Changing the tokens of the first document changes nothing after the BOS
  // that starts the second (attention, smear and lanes all respect it).
  GPT model = live_tiny_pr1855();
  model->eval();
  torch::manual_seed(2);
  auto ids = torch::randint(2, 96, {1, 12});
  ids[0][6] = kBosId;
  auto other = ids.clone();
  other.narrow(1, 0, 6).random_(2, 96);
  torch::NoGradGuard no_grad;
  const auto a = model->logits(ids), b = model->logits(other);
  EXPECT_TRUE(a.narrow(1, 6, 6).equal(b.narrow(1, 6, 6)));
  EXPECT_FALSE(a.narrow(1, 0, 6).equal(b.narrow(1, 0, 6)));
}

TEST(Pr1855Model, LoopChangesTheForwardAndTheTailMatchesTheFullRow) {
  GPT model = live_tiny_pr1855();
  EXPECT_TRUE(model->looping());  // built as it is evaluated
  torch::manual_seed(4);
  const auto ids = torch::randint(2, 96, {2, 12});
  const auto targets = torch::randint(0, 96, {2, 12});
  torch::NoGradGuard no_grad;
  const auto looped = model->token_losses(ids, targets);
  EXPECT_TRUE(model->token_losses(ids, targets, 8).equal(looped.narrow(1, 8, 4)));
  model->set_looping(false);
  EXPECT_FALSE(model->token_losses(ids, targets).equal(looped));
}

TEST(Pr1855Model, OptionsOffKeepTheBaselineModel) {
  // The baseline config with the #1855 fields at their defaults builds the
  // same parameters as before they existed (the golden tests pin the numbers).
  GPT model(ModelConfig{});
  EXPECT_FALSE(model->looping());
  EXPECT_FALSE(model->document_attention());
  EXPECT_FALSE(model->skip_gates.defined());
  EXPECT_FALSE(model->parallel_post_lambdas.defined());
  EXPECT_EQ(state_dict(model).front().first, "skip_weights");
}

}  // namespace
}  // namespace pgolf
