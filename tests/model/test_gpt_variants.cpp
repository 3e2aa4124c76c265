// The GPT's weight layouts and depth recurrence (spec model-and-training
// §3.9, §8): the three layouts compute the same function, recurrence reuses
// the same tensors, shared cores average their gradients, and with every
// option off the model is the baseline bit for bit.
#include <gtest/gtest.h>

#include "model/gpt.h"
#include "model/weights.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

using testing::tiny_entry_config;

// Moves every parameter away from its init so no path is zero.
void perturb(GPT& model, uint64_t seed) {
  torch::manual_seed(seed);
  torch::NoGradGuard no_grad;
  for (auto& p : model->parameters()) p.add_(torch::randn_like(p) * 0.05);
}

// Same weights under another layout's names (blocks <-> cores, one core per layer).
StateDict blocks_to_cores(const StateDict& weights) {
  StateDict out;
  for (const auto& [name, t] : weights) {
    const auto attn = name.find(".attn."), mlp = name.find(".mlp.");
    if (name.starts_with("blocks.") && (attn != std::string::npos || mlp != std::string::npos)) {
      out.emplace_back("cores." + name.substr(7), t);
    } else {
      out.emplace_back(name, t);
    }
  }
  return out;
}

torch::Tensor sample_ids(int64_t vocab, int64_t batch, int64_t len, uint64_t seed) {
  torch::manual_seed(seed);
  return torch::randint(0, vocab, {batch, len});
}

TEST(GptLayouts, BanksAndBlocksComputeTheSameFunction) {
  auto config = tiny_entry_config("blocks");
  torch::manual_seed(1);
  GPT blocks(config);
  perturb(blocks, 2);
  config.weight_layout = WeightLayout::kBanks;
  config.init_scheme = InitScheme::kOrthogonalUnscaled;
  GPT banks(config);
  const auto unbanked = state_dict(blocks);
  load_state_dict(banks, rebank_state_dict(unbanked, config.num_layers));
  // The round trip back is exact and in the script's order.
  const auto back = unbank_state_dict(state_dict(banks), config.num_layers);
  ASSERT_EQ(back.size(), unbanked.size());
  for (const auto& [name, t] : unbanked) EXPECT_TRUE(torch::equal(find_tensor(back, name), t));
  EXPECT_EQ(unbank_state_dict(state_dict(banks), config.num_layers)[1].first,
            "blocks.0.attn.c_q.weight");
  const auto ids = sample_ids(config.vocab_size, 2, 24, 3);
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::allclose(blocks->logits(ids), banks->logits(ids), 1e-5, 1e-5));
}

TEST(GptLayouts, CoresWithOneCorePerLayerEqualBlocks) {
  auto config = tiny_entry_config("blocks");
  torch::manual_seed(1);
  GPT blocks(config);
  perturb(blocks, 2);
  config.weight_layout = WeightLayout::kCores;
  config.unique_layers = 0;
  GPT cores(config);
  load_state_dict(cores, blocks_to_cores(state_dict(blocks)));
  const auto ids = sample_ids(config.vocab_size, 2, 24, 3);
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::allclose(blocks->logits(ids), cores->logits(ids), 1e-5, 1e-5));
}

TEST(GptLayouts, EveryOptionOffIsTheBaselineBitForBit) {
  // Same seed, same draws: the options at their neutral values change nothing,
  // and the cores layout with baseline init draws the same weights.
  const auto base = testing::golden_tiny_config();
  auto neutral = base;
  neutral.rope_dims = base.head_dim();
  neutral.leaky_slope = 0.0;
  neutral.recur_layers = " ";
  neutral.ve_layers = "1";          // ve_enabled stays off
  neutral.rope_ntk_ref_len = 4096;  // longer than any sequence here
  auto cores_config = base;
  cores_config.weight_layout = WeightLayout::kCores;
  torch::manual_seed(7);
  GPT a(base);
  torch::manual_seed(7);
  GPT b(neutral);
  torch::manual_seed(7);
  GPT c(cores_config);
  const auto ids = sample_ids(base.vocab_size, 2, 32, 3);
  torch::NoGradGuard no_grad;
  const auto expected = a->logits(ids);
  EXPECT_TRUE(torch::equal(expected, b->logits(ids)));
  EXPECT_TRUE(torch::equal(expected, c->logits(ids)));
  EXPECT_EQ(parameter_count(a), parameter_count(c));
}

TEST(DepthRecurrence, ExtraPassesReuseTheBlocksAfterTheLastLayer) {
  auto config = tiny_entry_config("banks");
  config.value_residual = false;  // keep v0 out of the manual replay below
  torch::manual_seed(1);
  GPT recur(config);
  perturb(recur, 2);
  auto plain_config = config;
  plain_config.recur_layers = "";
  GPT plain(plain_config);
  load_state_dict(plain, state_dict(recur));
  EXPECT_EQ(parameter_count(plain), parameter_count(recur));  // zero extra parameters

  const auto ids = sample_ids(config.vocab_size, 2, 16, 3);
  torch::NoGradGuard no_grad;
  ForwardTrace trace_plain, trace_recur;
  plain->hidden(ids, &trace_plain);
  const auto h = recur->hidden(ids, &trace_recur);
  // The first L passes are the plain model's; then blocks 1 and 2 run again
  // with their own weights, scalars and LN-scale against the same x0.
  auto find = [](const ForwardTrace& t, const std::string& name) {
    for (const auto& [n, v] : t.tensors)
      if (n == name) return v;
    ADD_FAILURE() << "no trace entry " << name;
    return torch::Tensor();
  };
  const auto x0 = find(trace_plain, "x0");
  auto x = find(trace_plain, "blocks.4.out");
  EXPECT_TRUE(torch::equal(x, find(trace_recur, "blocks.4.out")));
  torch::Tensor v0;
  for (int64_t layer : {1, 2}) {
    const auto m = recur->layer_matrices(layer);
    const LayerInputs in{&recur->attention(layer), &recur->mlp(layer), &m, {}, &v0};
    x = recur->blocks[layer]->as<BlockImpl>()->forward(x, x0, in);
  }
  EXPECT_TRUE(torch::allclose(rms_norm(x), h, 1e-6, 1e-6));
  EXPECT_FALSE(torch::allclose(plain->hidden(ids), h, 1e-3, 1e-3));
}

TEST(DepthRecurrence, SharedCoresAreTheSameTensorsAndAverageTheirGradients) {
  auto shared_config = tiny_entry_config("cores");  // 5 layers over 4 cores
  shared_config.xsa_last_n = 0;                     // XSA sits on cores, whose count differs below
  torch::manual_seed(1);
  GPT shared(shared_config);
  perturb(shared, 2);
  EXPECT_EQ(&shared->attention(0), &shared->attention(4));
  EXPECT_NE(&shared->attention(0), &shared->attention(3));
  auto separate_config = shared_config;
  separate_config.unique_layers = 0;  // 5 cores; core 4 := core 0
  GPT separate(separate_config);
  StateDict weights = state_dict(shared);
  for (const auto& [name, t] : state_dict(shared)) {
    if (name.starts_with("cores.0.")) weights.emplace_back("cores.4." + name.substr(8), t);
  }
  load_state_dict(separate, weights);

  const auto ids = sample_ids(shared_config.vocab_size, 2, 16, 3);
  const auto targets = sample_ids(shared_config.vocab_size, 2, 16, 4);
  shared->loss(ids, targets).backward();
  separate->loss(ids, targets).backward();
  auto grads = [](GPT& m) {
    std::map<std::string, torch::Tensor> out;
    for (const auto& item : m->named_parameters()) out[item.key()] = item.value().grad();
    return out;
  };
  auto gs = grads(shared), gp = grads(separate);
  for (const auto& [name, g] : gs) {
    ASSERT_TRUE(g.defined()) << name;
    ASSERT_TRUE(gp[name].defined()) << name;
    if (name.starts_with("cores.0.")) {
      const auto expected = 0.5 * (gp[name] + gp["cores.4." + name.substr(8)]);
      EXPECT_TRUE(torch::allclose(g, expected, 1e-5, 1e-7)) << name;
    } else {
      EXPECT_TRUE(torch::allclose(g, gp[name], 1e-5, 1e-7)) << name;
    }
  }
}

TEST(Xsa, SitsOnTheLastCoresNotTheLastLayers) {
  ModelConfig c = testing::golden_tiny_config();
  c.num_layers = 11;
  c.xsa_last_n = 4;
  GPT blocks(c);
  for (int64_t l = 0; l < 11; ++l) EXPECT_EQ(blocks->attention(l).use_xsa(), l >= 7) << l;
  c.weight_layout = WeightLayout::kCores;
  c.unique_layers = 10;  // #461: layer 10 runs core 0, which has no XSA
  GPT cores(c);
  for (int64_t l = 0; l < 11; ++l) {
    EXPECT_EQ(cores->attention(l).use_xsa(), l >= 6 && l <= 9) << l;
  }
}

TEST(GptConfig, RejectsImpossibleCombinations) {
  auto c = tiny_entry_config("blocks");
  c.unique_layers = 3;
  EXPECT_PGOLF_ERROR(GPT{c}, "WEIGHT_LAYOUT=cores");
  c = tiny_entry_config("blocks");
  c.recur_layers = "1,9";
  EXPECT_PGOLF_ERROR(GPT{c}, "RECUR_LAYERS names layer 9");
  c = tiny_entry_config("blocks");
  c.recur_layers = "1,x";
  EXPECT_PGOLF_ERROR(GPT{c}, "is not an integer");
  c = tiny_entry_config("blocks");
  c.rope_dims = 5;
  EXPECT_PGOLF_ERROR(GPT{c}, "ROPE_DIMS=5");
  c = tiny_entry_config("blocks");
  c.bigram_vocab_size = 0;
  EXPECT_PGOLF_ERROR(GPT{c}, "TRIGRAM=1");
  c = tiny_entry_config("banks");
  c.init_scheme = InitScheme::kBaseline;
  EXPECT_PGOLF_ERROR(GPT{c}, "WEIGHT_LAYOUT=banks");
}

}  // namespace
}  // namespace pgolf
