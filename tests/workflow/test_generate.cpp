// Sampling (`pgolf generate`): greedy is the argmax, top-k 1 is greedy,
// a seed fixes the draw, the window and the stop token hold; the command
// continues a prompt from an artifact with the challenge's tokenizer.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "artifact/artifact.h"
#include "config/presets.h"
#include "model/weights.h"
#include "tests/test_util.h"
#include "workflow/sampler.h"

namespace pgolf {
namespace {

ModelConfig tiny(int64_t vocab) {
  ModelConfig m = testing::two_layer_model(preset("cpu").model, 32);
  m.vocab_size = vocab;
  return m;
}

// A random model is nearly uniform; sharpen its logits so sampling has structure.
GPT random_model(int64_t vocab) {
  torch::manual_seed(7);
  GPT model(tiny(vocab));
  torch::NoGradGuard no_grad;
  for (auto& p : model->parameters()) p.normal_(0, 0.5);
  model->eval();
  return model;
}

TEST(Sampler, GreedyTopOneSeedsWindowAndStop) {
  GPT model = random_model(64);
  const std::vector<int> prompt = {1, 5, 9};
  SampleOptions greedy;
  greedy.temperature = 0;
  greedy.max_tokens = 6;
  const auto g = sample_tokens(model, prompt, 16, greedy);
  ASSERT_EQ(g.size(), 6u);
  // By hand: the argmax of the last position, token by token.
  std::vector<int> context = prompt;
  for (int expected : g) {
    torch::NoGradGuard no_grad;
    std::vector<int64_t> ids(context.begin(), context.end());
    const auto logits = model->logits(torch::tensor(ids).unsqueeze(0)).select(1, -1).squeeze(0);
    EXPECT_EQ(logits.argmax().item<int64_t>(), expected);
    context.push_back(expected);
  }
  SampleOptions top1;
  top1.temperature = 1.0;
  top1.top_k = 1;
  top1.max_tokens = 6;
  EXPECT_EQ(sample_tokens(model, prompt, 16, top1), g);

  SampleOptions hot;
  hot.temperature = 1.5;
  hot.top_k = 0;
  hot.max_tokens = 20;
  hot.seed = 1;
  const auto a = sample_tokens(model, prompt, 16, hot);
  EXPECT_EQ(sample_tokens(model, prompt, 16, hot), a);  // same seed, same text
  hot.seed = 2;
  EXPECT_NE(sample_tokens(model, prompt, 16, hot), a);
  // A context longer than the window is cut to its last tokens.
  hot.max_tokens = 40;
  int seen = 0;
  EXPECT_EQ(sample_tokens(model, prompt, 8, hot, [&](int) { ++seen; }).size(), 40u);
  EXPECT_EQ(seen, 40);

  greedy.stop_token = g[0];
  EXPECT_TRUE(sample_tokens(model, prompt, 16, greedy).empty());
  greedy.temperature = -1;
  EXPECT_PGOLF_ERROR(sample_tokens(model, prompt, 16, greedy), "--temperature must be >= 0");
  EXPECT_PGOLF_ERROR(sample_tokens(model, {}, 16, top1), "at least one token");
}

TEST(GenerateCommand, ContinuesAPromptFromAnArtifact) {
  PGOLF_REQUIRE_SHARED();
  testing::ScratchDir scratch;
  Config config = preset("cpu");
  config.model = tiny(1024);
  GPT model = random_model(1024);
  const auto artifact = scratch / "m.int8.pgolf";
  write_artifact(artifact, quantize_int8(state_dict(model)), to_json(config), Codec::kZlib, 9);
  const std::string args = fmt::format(
      "generate {} --prompt 'The river' --tokenizer-path {} --max-tokens 12 --seed 3 "
      "--threads 1",
      artifact.string(), testing::official_tokenizer().string());
  const auto first = testing::run_pgolf(args);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_EQ(first.output.rfind("The river", 0), 0u) << first.output;
  EXPECT_NE(first.output.find("tokens, temperature 0.8, top-k 50, seed 3]"), std::string::npos)
      << first.output;
  EXPECT_GT(first.output.find('\n'), std::string("The river").size()) << first.output;
  EXPECT_EQ(testing::run_pgolf(args).output, first.output);  // seeded

  const auto bad = testing::run_pgolf(fmt::format("generate {} --tokenizer-path {}",
                                                  (scratch / "none.pgolf").string(),
                                                  testing::official_tokenizer().string()));
  EXPECT_NE(bad.exit_code, 0);
}

}  // namespace
}  // namespace pgolf
