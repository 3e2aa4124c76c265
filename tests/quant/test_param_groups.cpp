// Optimizer groups and reference dtypes per entry (spec model-and-training §4.3, §8).
#include <gtest/gtest.h>

#include "config/presets.h"
#include "model/gpt.h"
#include "quant/param_groups.h"

namespace pgolf {
namespace {

std::map<std::string, ParamGroup> groups_of(const std::string& preset_name) {
  const Config config = preset(preset_name);
  GPT model(config.model);
  const bool banked = config.model.weight_layout == WeightLayout::kBanks;
  std::map<std::string, ParamGroup> out;
  for (const auto& item : model->named_parameters()) {
    out[item.key()] = param_group(item.key(), item.value(), banked);
  }
  return out;
}

TEST(ParamGroups, Pr1406MuonOwnsExactlyTheBanks) {
  auto g = groups_of("pr1406");
  for (const auto& [name, group] : g) {
    EXPECT_EQ(group == ParamGroup::kMatrix, name.ends_with("_bank")) << name;
  }
  EXPECT_EQ(g["tok_emb.weight"], ParamGroup::kTokenEmbedding);
  EXPECT_EQ(g["bigram.embed.weight"], ParamGroup::kTokenEmbedding);
  EXPECT_EQ(g["ve_shared.embed.weight"], ParamGroup::kTokenEmbedding);
  EXPECT_EQ(g["bigram.proj.weight"], ParamGroup::kScalar);  // #1406 trains them with Adam
  EXPECT_EQ(g["ve_shared.proj.weight"], ParamGroup::kScalar);
}

TEST(ParamGroups, Pr461SplitMatchesTheSpec) {
  // Spec §8.2: Muon 23,691,264; scalars 25,684; embedding tables 917,504.
  const Config config = preset("pr461");
  GPT model(config.model);
  std::map<ParamGroup, int64_t> numel;
  for (const auto& item : model->named_parameters()) {
    numel[param_group(item.key(), item.value())] += item.value().numel();
  }
  EXPECT_EQ(numel[ParamGroup::kMatrix], 23'691'264);
  EXPECT_EQ(numel[ParamGroup::kScalar], 25'684);
  EXPECT_EQ(numel[ParamGroup::kTokenEmbedding], 917'504);
}

TEST(ParamGroups, Pr562TrainsTheGateMatrixWithMuon) {
  auto g = groups_of("pr562");
  EXPECT_EQ(g["blocks.3.attn.attn_gate.weight"], ParamGroup::kMatrix);
  EXPECT_EQ(g["blocks.3.attn.attn_gate.bias"], ParamGroup::kScalar);
  EXPECT_EQ(g["blocks.3.attn.vr_lambda"], ParamGroup::kScalar);
  EXPECT_EQ(g["bigram.proj.weight"], ParamGroup::kMatrix);
  EXPECT_EQ(reference_dtype("blocks.3.attn.attn_gate.weight"), torch::kBFloat16);
  EXPECT_EQ(reference_dtype("blocks.3.attn.attn_gate.weight", /*banked=*/true), torch::kFloat);
  EXPECT_EQ(reference_dtype("bigram.embed.weight"), torch::kBFloat16);
  EXPECT_EQ(reference_dtype("bigram.proj.weight"), torch::kFloat);
}

}  // namespace
}  // namespace pgolf
