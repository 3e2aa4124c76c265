// Parity with the official train_gpt.py on the golden tiny model
// (../shared/golden/baseline): loss, logits, activations and every gradient,
// within the tolerances of golden/README.md.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "model/gpt.h"
#include "model/weights.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

std::filesystem::path golden() { return testing::shared_dir() / "golden" / "baseline"; }

struct TinyModel {
  GPT model{nullptr};
  torch::Tensor x, y;
};

TinyModel load_tiny() {
  TinyModel t;
  t.model = GPT(testing::golden_tiny_config());
  load_state_dict(t.model, read_safetensors(golden() / "tiny_weights.safetensors"));
  const auto inputs = read_safetensors(golden() / "tiny_inputs.safetensors");
  t.x = find_tensor(inputs, "x");
  t.y = find_tensor(inputs, "y");
  return t;
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

TEST(GoldenParity, TinyModelHasReferenceParameterCount) {
  PGOLF_REQUIRE_SHARED();
  auto t = load_tiny();
  EXPECT_EQ(parameter_count(t.model), 592144);
  // Same names in the same order as the reference's state_dict.
  const auto weights = read_safetensors(golden() / "tiny_weights.safetensors");
  const auto ours = state_dict(t.model);
  ASSERT_EQ(ours.size(), weights.size());
  for (size_t i = 0; i < ours.size(); ++i) EXPECT_EQ(ours[i].first, weights[i].first);
}

TEST(GoldenParity, LossMatchesReference) {
  PGOLF_REQUIRE_SHARED();
  auto t = load_tiny();
  const double loss = t.model->loss(t.x, t.y).item<double>();
  EXPECT_NEAR(loss, 7.421067714691162, 2e-6);
}

TEST(GoldenParity, LogitsMatchReference) {
  PGOLF_REQUIRE_SHARED();
  auto t = load_tiny();
  const auto expected = read_safetensors(golden() / "tiny_logits.safetensors");
  torch::NoGradGuard no_grad;
  const auto h = t.model->hidden(t.x);
  const auto pre = torch::nn::functional::linear(h, t.model->tok_emb->weight).reshape({-1, 1024});
  EXPECT_LE(max_abs_diff(pre, find_tensor(expected, "logits_pre_softcap")), 2e-5);
  const auto logits = t.model->logits(t.x).reshape({-1, 1024});
  EXPECT_LE(max_abs_diff(logits, find_tensor(expected, "logits")), 2e-5);
}

TEST(GoldenParity, ActivationsMatchReference) {
  PGOLF_REQUIRE_SHARED();
  auto t = load_tiny();
  const auto expected = read_safetensors(golden() / "tiny_activations.safetensors");
  ForwardTrace trace;
  torch::NoGradGuard no_grad;
  t.model->hidden(t.x, &trace);
  int checked = 0;
  for (const auto& [name, ref] : expected) {
    bool found = false;
    for (const auto& [ours_name, ours] : trace.tensors) {
      if (ours_name != name) continue;
      found = true;
      EXPECT_LE(max_abs_diff(ours, ref), 5e-5) << name;
      ++checked;
    }
    EXPECT_TRUE(found) << "no activation recorded for " << name;
  }
  EXPECT_EQ(checked, 18);
}

TEST(GoldenParity, EveryGradientMatchesReference) {
  PGOLF_REQUIRE_SHARED();
  auto t = load_tiny();
  t.model->train();
  t.model->loss(t.x, t.y).backward();
  const auto expected = read_safetensors(golden() / "tiny_grads.safetensors");
  auto params = t.model->named_parameters();
  ASSERT_EQ(expected.size(), params.size());
  for (const auto& [name, g_ref] : expected) {
    const auto g = params[name].grad();
    ASSERT_TRUE(g.defined()) << name;
    const double max_ref = g_ref.abs().max().item<double>();
    const auto bound = 1e-4 * g_ref.abs().to(torch::kDouble) + 2e-5 * max_ref;
    const auto err = (g.to(torch::kDouble) - g_ref.to(torch::kDouble)).abs();
    EXPECT_TRUE((err <= bound).all().item<bool>())
        << name << ": max err " << err.max().item<double>() << " (max |g_ref| " << max_ref << ")";
  }
}

TEST(GoldenParity, BaselineStateDictMatchesReferenceKeysShapesAndCount) {
  PGOLF_REQUIRE_SHARED();
  std::ifstream in(golden() / "state_dict.json");
  const auto ref = nlohmann::json::parse(in);
  torch::manual_seed(0);
  GPT model{ModelConfig{}};
  const auto ours = state_dict(model);
  ASSERT_EQ(static_cast<int64_t>(ours.size()), ref["num_keys"].get<int64_t>());
  for (size_t i = 0; i < ours.size(); ++i) {
    const auto& key = ref["keys"][i];
    EXPECT_EQ(ours[i].first, key["key"].get<std::string>());
    EXPECT_EQ(ours[i].second.sizes().vec(), key["shape"].get<std::vector<int64_t>>())
        << ours[i].first;
  }
  EXPECT_EQ(parameter_count(model), 17059912);
  EXPECT_EQ(ref["total_params"].get<int64_t>(), 17059912);
}

}  // namespace
}  // namespace pgolf

namespace pgolf {
namespace {

// Regression: the RoPE table cached during an InferenceMode evaluation must
// still be usable by a later training step (validation at step 0, then train).
TEST(Gpt, TrainsAfterInferenceModeEvaluation) {
  torch::manual_seed(0);
  GPT model(testing::two_layer_model());
  const auto x = torch::randint(1024, {2, 16}), y = torch::randint(1024, {2, 16});
  {
    torch::InferenceMode inference;
    model->token_losses(x, y);
  }
  auto loss = model->loss(x, y);
  EXPECT_NO_THROW(loss.backward());
  EXPECT_TRUE(model->tok_emb->weight.grad().defined());
}

}  // namespace
}  // namespace pgolf

namespace pgolf {
namespace {

// The sliding evaluation's fast path: the last layer's queries and MLP and
// the head on the scored tail only give the tail of the full-length losses,
// whichever layer runs last (a recurrence pass, a shared core, an XSA layer
// with gates, value residual and a value embedding).
TEST(Gpt, TokenLossesFromAPositionAreTheTailOfAllLosses) {
  ModelConfig one_layer = testing::two_layer_model();
  one_layer.num_layers = 1;
  // Without recurrence the last pass is layer 4: XSA, a value embedding, the
  // value residual and the gate all run on the tail.
  ModelConfig xsa_last = testing::tiny_entry_config("blocks");
  xsa_last.recur_layers = "";
  const std::vector<std::pair<std::string, ModelConfig>> models = {
      {"two layers", testing::two_layer_model()},
      {"one layer", one_layer},
      {"all options, XSA in the last pass", xsa_last},
      {"all options, blocks", testing::tiny_entry_config("blocks")},
      {"all options, cores", testing::tiny_entry_config("cores")},
      {"all options, banks", testing::tiny_entry_config("banks")}};
  for (const auto& [name, config] : models) {
    torch::manual_seed(0);
    GPT model(config);
    {
      // Trained-like weights: at init the zero projections would hide the layers' attention.
      torch::NoGradGuard no_grad;
      for (auto& p : model->parameters()) p.add_(torch::randn_like(p) * 0.2);
    }
    torch::InferenceMode inference;
    const int64_t V = config.vocab_size;
    const auto x = torch::randint(V, {3, 32}), y = torch::randint(V, {3, 32});
    const auto all = model->token_losses(x, y);
    for (int64_t from : {0, 1, 24, 31}) {
      const auto tail = model->token_losses(x, y, from);
      ASSERT_EQ(tail.sizes(), (std::vector<int64_t>{3, 32 - from}));
      EXPECT_TRUE(torch::allclose(tail, all.slice(1, from), /*rtol=*/1e-5, /*atol=*/1e-5))
          << name << ", from " << from << ": max diff "
          << (tail - all.slice(1, from)).abs().max().item<float>();
      const auto h = model->hidden(x, /*trace=*/nullptr, from);
      EXPECT_TRUE(torch::allclose(h, model->hidden(x).slice(1, from), 1e-5, 1e-5)) << name;
    }
    EXPECT_PGOLF_ERROR(model->token_losses(x, y, 32), "outside [0, 32)");
    EXPECT_PGOLF_ERROR(model->hidden(x, nullptr, -1), "outside [0, 32)");
  }
}

}  // namespace
}  // namespace pgolf
