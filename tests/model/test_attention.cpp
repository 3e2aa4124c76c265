// Attention variants (spec model-and-training §3.6): XSA, value residual,
// gated attention, and the MLP activations (§3.7).
#include <gtest/gtest.h>

#include "model/attention.h"

namespace pgolf {
namespace {

ModelConfig small_config() {
  ModelConfig c;
  c.vocab_size = 64;
  c.num_layers = 2;
  c.model_dim = 32;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  return c;
}

LayerMatrices matrices_of(CausalSelfAttentionImpl& attn) {
  return {attn.c_q->weight, attn.c_k->weight, attn.c_v->weight, attn.proj->weight, {}, {}};
}

TEST(ExclusiveSelfAttention, RemovesTheOwnValueComponent) {
  auto y = torch::randn({2, 4, 7, 8});
  auto v = torch::randn({2, 2, 7, 8});
  auto out = exclusive_self_attention(y, v);
  // Query head h uses KV head h / 2: the output is orthogonal to that value.
  for (int64_t h = 0; h < 4; ++h) {
    auto dots = (out.select(1, h) * v.select(1, h / 2)).sum(-1);
    EXPECT_LT(dots.abs().max().item<double>(), 1e-5) << "head " << h;
  }
  // And only that component was removed: y - out is parallel to v.
  auto removed = y - out;
  auto vh = v.repeat_interleave(2, 1);
  auto cos = torch::nn::functional::cosine_similarity(
      removed, vh, torch::nn::functional::CosineSimilarityFuncOptions().dim(-1));
  EXPECT_GT(cos.abs().min().item<double>(), 1 - 1e-4);
}

TEST(ExclusiveSelfAttention, AttentionOutputHasNoComponentAlongItsValues) {
  torch::manual_seed(0);
  auto config = small_config();
  CausalSelfAttention plain(config, true, /*use_xsa=*/false);
  CausalSelfAttention xsa(config, true, /*use_xsa=*/true);
  {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < plain->parameters().size(); ++i)
      xsa->parameters()[i].copy_(plain->parameters()[i]);
    // Identity output projection, so the module output is y itself.
    xsa->proj->weight.copy_(torch::eye(32));
  }
  auto u = torch::randn({1, 6, 32});
  torch::Tensor v0;
  auto y = xsa->forward(u, matrices_of(*xsa), {}, v0).view({1, 6, 4, 8}).transpose(1, 2);
  auto v = torch::nn::functional::linear(u, xsa->c_v->weight).view({1, 6, 2, 8}).transpose(1, 2);
  for (int64_t h = 0; h < 4; ++h) {
    auto dots = (y.select(1, h) * v.select(1, h / 2)).sum(-1);
    EXPECT_LT(dots.abs().max().item<double>(), 1e-5);
  }
}

TEST(ValueResidual, LambdaFormIsIdentityAtInitAndBlendsLaterLayers) {
  torch::manual_seed(0);
  auto config = small_config();
  config.value_residual = true;
  config.value_residual_mode = ValueResidualMode::kLambda;
  CausalSelfAttention first(config, true, false), later(config, true, false);
  auto plain_config = small_config();
  CausalSelfAttention plain(plain_config, true, false);
  {
    torch::NoGradGuard no_grad;
    for (auto* a : {&first, &later}) {
      (*a)->c_q->weight.copy_(plain->c_q->weight);
      (*a)->c_k->weight.copy_(plain->c_k->weight);
      (*a)->c_v->weight.copy_(plain->c_v->weight);
      (*a)->proj->weight.normal_();
    }
    plain->proj->weight.copy_(first->proj->weight);
  }
  auto u = torch::randn({2, 5, 32});
  torch::Tensor v0, none;
  auto out = first->forward(u, matrices_of(*first), {}, v0);
  // Layer 0 at init: v * (0.5 + 0.5) = v, and it records its raw values.
  EXPECT_TRUE(torch::allclose(out, plain->forward(u, matrices_of(*plain), {}, none), 1e-5, 1e-6));
  ASSERT_TRUE(v0.defined());
  EXPECT_EQ(first->vr_lambda.numel(), 2);
  // A later layer with lambda = (1, 0) attends over layer 0's values only.
  {
    torch::NoGradGuard no_grad;
    later->vr_lambda.copy_(torch::tensor({1.0, 0.0}));
    later->c_v->weight.normal_();  // its own values no longer matter
    plain->proj->weight.copy_(later->proj->weight);
  }
  auto v0_copy = v0;
  auto blended = later->forward(u, matrices_of(*later), {}, v0);
  EXPECT_TRUE(torch::equal(v0, v0_copy));  // not overwritten
  torch::Tensor none2;
  EXPECT_TRUE(
      torch::allclose(blended, plain->forward(u, matrices_of(*plain), {}, none2), 1e-5, 1e-6));
}

TEST(ValueResidual, SigmoidFormAddsGatedLayerZeroValues) {
  auto config = small_config();
  config.value_residual = true;
  config.value_residual_mode = ValueResidualMode::kSigmoid;
  CausalSelfAttention attn(config, true, false);
  EXPECT_EQ(attn->vrl_alpha.numel(), 1);
  EXPECT_FALSE(attn->vr_lambda.defined());
  auto u = torch::randn({1, 4, 32});
  torch::Tensor v0;
  attn->forward(u, matrices_of(*attn), {}, v0);  // first layer: no mixing, sets v0
  auto raw = v0;
  // With v0 = 0 a later layer equals a layer without value residual.
  torch::Tensor zeros = torch::zeros_like(raw);
  torch::Tensor none;
  CausalSelfAttention plain(small_config(), true, false);
  {
    torch::NoGradGuard no_grad;
    plain->c_q->weight.copy_(attn->c_q->weight);
    plain->c_k->weight.copy_(attn->c_k->weight);
    plain->c_v->weight.copy_(attn->c_v->weight);
    plain->proj->weight.normal_();
    attn->proj->weight.copy_(plain->proj->weight);
  }
  EXPECT_TRUE(torch::allclose(attn->forward(u, matrices_of(*attn), {}, zeros),
                              plain->forward(u, matrices_of(*plain), {}, none), 1e-5, 1e-6));
}

TEST(GatedAttention, GatesEachHeadBySigmoidOfItsInput) {
  torch::manual_seed(0);
  auto config = small_config();
  config.gated_attention = true;
  CausalSelfAttention gated(config, true, false);
  CausalSelfAttention plain(small_config(), true, false);
  EXPECT_EQ(gated->attn_gate->weight.abs().max().item<double>(), 0.0);
  EXPECT_EQ(gated->attn_gate->bias.min().item<double>(), 4.0);
  {
    torch::NoGradGuard no_grad;
    plain->c_q->weight.copy_(gated->c_q->weight);
    plain->c_k->weight.copy_(gated->c_k->weight);
    plain->c_v->weight.copy_(gated->c_v->weight);
    gated->proj->weight.normal_();
    plain->proj->weight.copy_(gated->proj->weight);
  }
  auto u = torch::randn({1, 5, 32});
  torch::Tensor a, b;
  // At init every gate is sigmoid(4); the output projection is linear.
  auto expected = plain->forward(u, matrices_of(*plain), {}, a) * (1.0 / (1.0 + std::exp(-4.0)));
  EXPECT_TRUE(torch::allclose(gated->forward(u, matrices_of(*gated), {}, b), expected, 1e-5, 1e-6));
}

TEST(MLP, ActivationsAreReluSquaredOrLeakyReluSquared) {
  auto config = small_config();
  auto h = torch::tensor({{-2.0, -0.5, 0.0, 1.5}});
  LayerMatrices w{{}, {}, {}, {}, torch::eye(4), torch::eye(4)};
  MLP relu(config, false);
  EXPECT_TRUE(torch::allclose(relu->forward(h, w), torch::tensor({{0.0, 0.0, 0.0, 2.25}})));
  config.leaky_slope = 0.5;
  MLP leaky(config, false);
  EXPECT_TRUE(torch::allclose(leaky->forward(h, w), torch::tensor({{1.0, 0.0625, 0.0, 2.25}})));
}

}  // namespace
}  // namespace pgolf
