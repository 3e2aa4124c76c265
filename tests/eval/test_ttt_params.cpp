// Which tensors TTT trains and at what LR scale (spec quantize-eval-ttt §5.2,
// §5.6, §5.7): #461's name-based freezing reaches the shared cores; the
// per-block scale reaches the block matrices (bank slices included); #562's
// proj/fc groups.
#include <gtest/gtest.h>

#include <map>

#include "eval/ttt_params.h"
#include "model/weights.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

std::map<std::string, TrainableParam> by_name(const TrainableSet& set) {
  std::map<std::string, TrainableParam> out;
  for (const auto& p : set.params) out[p.name] = p;
  return out;
}

double scale_of(const TrainableParam& p) {
  return p.lr_scale.defined() ? p.lr_scale.item<double>() : 1.0;
}

TEST(TttParams, FreezingBlocksFreezesTheCoresTheyUse) {
  torch::manual_seed(0);
  GPT model(testing::tiny_entry_config("cores"));  // 5 layers over 4 cores; layer 4 uses core 0
  ParamSelection s;
  s.freeze_blocks = 2;
  const TrainableSet set = select_trainable(model, s);
  const auto trainable = by_name(set);
  for (const auto& item : model->named_parameters()) {
    const std::string& n = item.key();
    const bool frozen = n.rfind("blocks.0.", 0) == 0 || n.rfind("blocks.1.", 0) == 0 ||
                        n.rfind("cores.0.", 0) == 0 || n.rfind("cores.1.", 0) == 0;
    EXPECT_EQ(trainable.count(n) == 0, frozen) << n;
  }
  EXPECT_EQ(set.trainable_count + set.frozen_count, parameter_count(model));
  {
    FreezeGuard guard(set);
    for (const auto& p : set.frozen) EXPECT_FALSE(p.requires_grad());
  }
  for (const auto& p : set.frozen) EXPECT_TRUE(p.requires_grad());
}

TEST(TttParams, PerBlockScaleReachesBlockMatricesAndBankSlices) {
  torch::manual_seed(0);
  GPT banks(testing::tiny_entry_config("banks"));  // 5 layers
  ParamSelection s;
  s.block_lr_min = 0.3;
  s.proj_mult = 2.0;
  const auto set = by_name(select_trainable(banks, s));
  const auto qo = set.at("qo_bank").lr_scale.reshape({-1});
  ASSERT_EQ(qo.numel(), 10);
  EXPECT_NEAR(qo[0].item<double>(), 0.3, 1e-6);             // Wq of layer 0
  EXPECT_NEAR(qo[4].item<double>(), 1.0, 1e-6);             // Wq of layer 4
  EXPECT_NEAR(qo[5 + 2].item<double>(), 2.0 * 0.65, 1e-6);  // Wo of layer 2 (proj)
  EXPECT_NEAR(scale_of(set.at("blocks.4.attn_scale")), 1.0, 1e-6);
  EXPECT_NEAR(scale_of(set.at("blocks.0.attn_scale")), 0.3, 1e-6);
  EXPECT_NEAR(scale_of(set.at("tok_emb.weight")), 1.0, 1e-12);

  // #1406's dTTT scales only the blocks' own tensors: the banks stay at 1.
  s.scale_bank_slices = false;
  s.proj_mult = 1.0;
  const auto dttt = by_name(select_trainable(banks, s));
  EXPECT_NEAR(dttt.at("qo_bank").lr_scale.min().item<double>(), 1.0, 1e-12);
  EXPECT_NEAR(scale_of(dttt.at("blocks.0.attn_scale")), 0.3, 1e-6);
}

TEST(TttParams, Pr562GroupsByName) {
  torch::manual_seed(0);
  GPT model(testing::tiny_entry_config("blocks"));
  ParamSelection s;
  s.proj_mult = 3.0;
  s.fc_mult = 0.5;
  const auto set = by_name(select_trainable(model, s));
  EXPECT_DOUBLE_EQ(scale_of(set.at("blocks.0.attn.proj.weight")), 3.0);
  EXPECT_DOUBLE_EQ(scale_of(set.at("blocks.0.mlp.proj.weight")), 3.0);
  EXPECT_DOUBLE_EQ(scale_of(set.at("bigram.proj.weight")), 3.0);
  EXPECT_DOUBLE_EQ(scale_of(set.at("blocks.0.mlp.fc.weight")), 0.5);
  EXPECT_DOUBLE_EQ(scale_of(set.at("blocks.0.attn.c_q.weight")), 1.0);
}

TEST(TttParams, FreezingEveryBlockIsAnError) {
  torch::manual_seed(0);
  GPT model(testing::tiny_entry_config("blocks"));
  ParamSelection s;
  s.freeze_blocks = 5;
  EXPECT_PGOLF_ERROR(select_trainable(model, s), "TTT_FREEZE_BLOCKS=5");
}

}  // namespace
}  // namespace pgolf
