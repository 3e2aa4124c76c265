// Each entry's preset rebuilds its model exactly (spec model-and-training §6,
// §8, §11): parameter counts, state-dict names and shapes, and the step-0
// logits every entry starts from.
#include <gtest/gtest.h>

#include <array>
#include <map>

#include "config/presets.h"
#include "model/gpt.h"
#include "model/weights.h"

namespace pgolf {
namespace {

struct EntryExpectation {
  const char* preset;
  int64_t params;
  size_t keys;
};

class EntryPreset : public ::testing::TestWithParam<EntryExpectation> {};

TEST_P(EntryPreset, HasTheReferenceParameterCount) {
  const auto& e = GetParam();
  const Config config = preset(e.preset);
  torch::manual_seed(config.train.seed);
  GPT model(config.model);
  EXPECT_EQ(parameter_count(model), e.params);
  EXPECT_EQ(state_dict(model).size(), e.keys);
}

// At init the output projections and the bigram table are zero, so every
// block passes x through and the skips add copies of x0; the final norm
// removes that scale: logits = 30 tanh(rmsnorm(x0) E^T / 30) with
// x0 = SmearGate(rmsnorm(E[ids])), gate 0.5 (spec §11).
TEST_P(EntryPreset, StepZeroLogitsFollowTheSpec) {
  const Config config = preset(GetParam().preset);
  torch::manual_seed(config.train.seed);
  GPT model(config.model);
  torch::manual_seed(0);
  const auto ids = torch::randint(0, 1024, {2, 48});
  torch::NoGradGuard no_grad;
  const auto E = model->tok_emb->weight;
  auto e = rms_norm(E.index_select(0, ids.flatten()).view({2, 48, -1}));
  auto prev = torch::cat({torch::zeros_like(e.narrow(1, 0, 1)), e.narrow(1, 0, 47)}, 1);
  auto x0 = 0.5 * e + 0.5 * prev;
  auto expected = 30.0 * torch::tanh(rms_norm(x0).matmul(E.t()) / 30.0);
  const double diff = (model->logits(ids) - expected).abs().max().item<double>();
  EXPECT_LT(diff, 2e-5);
}

INSTANTIATE_TEST_SUITE_P(Entries, EntryPreset,
                         ::testing::Values(EntryExpectation{"pr1406", 26'928'220, 59},
                                           EntryExpectation{"pr461", 24'634'452, 114},
                                           EntryExpectation{"pr456", 25'517'137, 106},
                                           EntryExpectation{"pr562", 24'509'621, 136}),
                         [](const auto& info) { return std::string(info.param.preset); });

// The last values of tensors drawn early and late in construction, read from
// the reference scripts' own initial state dicts (bench/reference/entry_model.py
// --save-init, seed of each entry): same draws, same order, same bf16 rounding.
TEST(EntryPresets, InitialWeightsAreTheReferenceDraws) {
  struct Probe {
    const char* preset;
    const char* tensor;
    std::array<double, 3> last;
  };
  const Probe probes[] = {
      {"pr1406", "bigram.proj.weight", {0.0174560546875, -0.006591796875, -0.03662109375}},
      {"pr1406", "ve_shared.embed.weight", {0.016845703125, 0.002410888671875, 0.00994873046875}},
      {"pr1406", "tok_emb.weight", {0.004150390625, -0.0004138946533203125, -0.00372314453125}},
      {"pr461", "cores.9.mlp.fc.weight", {-0.0260009765625, -0.01611328125, -0.040283203125}},
      {"pr461", "ve_shared.proj.weight", {0.0025177001953125, 0.01397705078125, -0.01373291015625}},
      {"pr562", "blocks.0.attn.c_q.weight", {0.026611328125, -0.06494140625, 0.0556640625}},
      {"baseline",
       "blocks.8.mlp.fc.weight",
       {-0.0079345703125, 0.02880859375, -0.00016021728515625}},
  };
  std::map<std::string, StateDict> models;
  for (const auto& probe : probes) {
    if (!models.count(probe.preset)) {
      const Config config = preset(probe.preset);
      torch::manual_seed(config.train.seed);
      GPT model(config.model);
      models[probe.preset] = state_dict(model);
    }
    const auto flat = find_tensor(models[probe.preset], probe.tensor).reshape({-1});
    for (int64_t i = 0; i < 3; ++i) {
      EXPECT_EQ(flat[flat.numel() - 3 + i].item<double>(), probe.last[i])
          << probe.preset << " " << probe.tensor;
    }
  }
}

TEST(EntryPresets, Pr1406StateDictLayout) {
  const Config config = preset("pr1406");
  GPT model(config.model);
  const auto sd = state_dict(model);
  auto shape = [&](const std::string& name) { return find_tensor(sd, name).sizes().vec(); };
  EXPECT_EQ(shape("qo_bank"), (std::vector<int64_t>{22, 512, 512}));
  EXPECT_EQ(shape("kv_bank"), (std::vector<int64_t>{22, 256, 512}));
  EXPECT_EQ(shape("mlp_up_bank"), (std::vector<int64_t>{11, 1536, 512}));
  EXPECT_EQ(shape("mlp_down_bank"), (std::vector<int64_t>{11, 512, 1536}));
  EXPECT_EQ(shape("bigram.embed.weight"), (std::vector<int64_t>{1536, 128}));
  EXPECT_EQ(shape("bigram.scale"), (std::vector<int64_t>{}));
  EXPECT_EQ(shape("ve_shared.proj.weight"), (std::vector<int64_t>{256, 128}));
  EXPECT_EQ(shape("ve_layer_scales.1"), (std::vector<int64_t>{1}));
  EXPECT_EQ(shape("blocks.10.attn.q_gain"), (std::vector<int64_t>{8}));
  EXPECT_EQ(find_tensor(sd, "blocks.3.attn.q_gain")[0].item<double>(), 5.0);
  // Bank init: Q, K, V, up orthogonal (to bf16 rounding); out and down zero.
  auto q = find_tensor(sd, "qo_bank")[3];
  EXPECT_TRUE(torch::allclose(q.mm(q.t()), torch::eye(512), 0, 2e-2));
  EXPECT_EQ(find_tensor(sd, "qo_bank")[14].abs().max().item<double>(), 0.0);
  EXPECT_EQ(find_tensor(sd, "mlp_down_bank").abs().max().item<double>(), 0.0);
  // #1406 does not scale the small projections; #461 does (by 1/sqrt(22)).
  auto p = find_tensor(sd, "bigram.proj.weight");
  EXPECT_TRUE(torch::allclose(p.t().mm(p), torch::eye(128), 0, 2e-2));
  GPT other(preset("pr461").model);
  auto p461 = find_tensor(state_dict(other), "bigram.proj.weight");
  EXPECT_TRUE(torch::allclose(p461.t().mm(p461), torch::eye(128) / 22.0, 0, 1e-3));
}

TEST(EntryPresets, Pr461SharesCoreZeroWithLayerTen) {
  GPT model(preset("pr461").model);
  EXPECT_EQ(model->cores->size(), 10u);
  EXPECT_EQ(model->blocks->size(), 11u);
  EXPECT_EQ(&model->attention(10), &model->attention(0));
  EXPECT_EQ(model->blocks[10]->as<BlockImpl>()->ln_scale_factor(), 1.0 / std::sqrt(11.0));
}

}  // namespace
}  // namespace pgolf
