// #1855's test-time LoRA adapters (model/lora.h): at B = 0 they change
// nothing, bit for bit; each row of a batch is its own document's adapter;
// A is drawn in the record's order from the default generator; the adapters
// reach every pass slot and the head; resets keep or redraw A.
#include <gtest/gtest.h>

#include "model/documents.h"
#include "model/gpt.h"
#include "model/lora.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

GPT live_model() {
  torch::manual_seed(5);
  GPT model(testing::tiny_pr1855_config());
  torch::NoGradGuard no_grad;
  for (auto& p : model->parameters()) p.add_(torch::randn_like(p) * 0.05);
  model->eval();
  return model;
}

LoraShape shape(int64_t batch) {
  LoraShape s;
  s.batch = batch;
  s.rank = 3;
  s.alpha = 6;
  return s;
}

torch::Tensor ids(int64_t batch, int64_t len) {
  torch::manual_seed(9);
  auto x = torch::randint(2, 96, {batch, len});
  x.select(1, 0).fill_(kBosId);
  return x;
}

TEST(Lora, ZeroBChangesNothing) {
  GPT model = live_model();
  const auto x = ids(3, 10), y = ids(3, 10).roll(1, 1);
  torch::NoGradGuard no_grad;
  const auto plain = model->token_losses(x, y);
  LoraAdapters adapters(model->config(), model->looping(), shape(3), torch::kCPU);
  model->set_adapters(&adapters);
  EXPECT_TRUE(model->token_losses(x, y).equal(plain));
  model->set_adapters(nullptr);
}

TEST(Lora, EachRowIsItsOwnDocumentsAdapterOnEveryTarget) {
  GPT model = live_model();
  const auto x = ids(3, 10), y = ids(3, 10).roll(1, 1);
  LoraAdapters adapters(model->config(), model->looping(), shape(3), torch::kCPU);
  model->set_adapters(&adapters);
  torch::NoGradGuard no_grad;
  const auto before = model->token_losses(x, y);
  // Every target of the model has an adapter that changes row 1 only:
  // q, k, v, o and mlp of one pass slot each, and the head.
  const auto slots = adapters.slots();
  EXPECT_EQ(slots, 7);  // 5 blocks, blocks 1-2 looped once more
  std::vector<const BatchedLora*> targets{&adapters.head()};
  for (int64_t s : {int64_t{0}, slots / 2, slots - 1}) {
    const PassAdapters p = adapters.pass(s);
    for (const BatchedLora* lora : {p.q, p.k, p.v, p.o, p.mlp}) targets.push_back(lora);
  }
  for (const BatchedLora* lora : targets) {
    auto& B = const_cast<BatchedLora*>(lora)->B;
    B[1].normal_(0.0, 0.5);
    const auto after = model->token_losses(x, y);
    EXPECT_TRUE(after[0].equal(before[0]));
    EXPECT_TRUE(after[2].equal(before[2]));
    EXPECT_FALSE(after[1].equal(before[1]));
    B.zero_();
  }
  model->set_adapters(nullptr);
}

TEST(Lora, DrawsAInTheRecordsOrderAndResets) {
  const ModelConfig config = testing::tiny_pr1855_config();
  torch::manual_seed(17);
  LoraAdapters adapters(config, /*looping=*/true, shape(2), torch::kCPU);
  torch::manual_seed(17);
  const double head_bound = 1.0 / std::sqrt(64.0);
  const auto head = torch::empty({2, 3, 64}).uniform_(-head_bound, head_bound);
  const auto q0 = torch::empty({2, 3, 64}).uniform_(-head_bound, head_bound);
  EXPECT_TRUE(adapters.head().A.equal(head));
  EXPECT_TRUE(adapters.pass(0).q->A.equal(q0));
  EXPECT_TRUE(adapters.head().B.eq(0).all().item<bool>());
  // Per document: head 3*(64+96) + slots * (q, v, k, mlp, o).
  const int64_t kv = config.kv_dim();
  EXPECT_EQ(adapters.parameters_per_document(),
            3 * (64 + 96) + 7 * 3 * ((64 + 64) + (64 + kv) * 2 + (64 + 64) * 2));

  const auto a = adapters.pass(3).v->A.clone();
  const_cast<BatchedLora&>(*adapters.pass(3).v).B.detach().fill_(1);
  adapters.reset(/*warm_start_a=*/true);
  EXPECT_TRUE(adapters.pass(3).v->A.equal(a));
  EXPECT_TRUE(adapters.pass(3).v->B.eq(0).all().item<bool>());
  adapters.reset(/*warm_start_a=*/false);
  EXPECT_FALSE(adapters.pass(3).v->A.equal(a));
  EXPECT_LE(adapters.pass(3).v->A.abs().max().item<double>(), head_bound);
}

TEST(Lora, AWrongBatchOrModelIsAnError) {
  GPT model = live_model();
  LoraAdapters adapters(model->config(), model->looping(), shape(2), torch::kCPU);
  model->set_adapters(&adapters);
  EXPECT_PGOLF_ERROR(model->token_losses(ids(3, 6), ids(3, 6)), "LoRA adapters for 2 documents");
  model->set_adapters(nullptr);
  LoraAdapters unlooped(model->config(), /*looping=*/false, shape(2), torch::kCPU);
  EXPECT_PGOLF_ERROR(model->set_adapters(&unlooped), "slots");
}

}  // namespace
}  // namespace pgolf
