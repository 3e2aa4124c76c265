// BigramHash / TrigramHash (spec model-and-training §3.2 test vectors),
// SmearGate (§3.3) and the value embedding (§3.6.3).
#include <gtest/gtest.h>

#include "model/embeddings.h"

namespace pgolf {
namespace {

torch::Tensor ids() { return torch::tensor({0, 1, 2, 3, 1023, 512, 7}, torch::kLong); }

std::vector<int64_t> to_vector(const torch::Tensor& t) {
  auto c = t.contiguous().to(torch::kLong);
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

TEST(NgramHash, BigramMatchesSpecVectors) {
  EXPECT_EQ(to_vector(bigram_hash(ids(), 1536)),
            (std::vector<int64_t>{1535, 1008, 962, 1060, 824, 1475, 226}));
  EXPECT_EQ(to_vector(bigram_hash(ids(), 2048)),
            (std::vector<int64_t>{2047, 1514, 435, 1556, 1927, 580, 484}));
  EXPECT_EQ(to_vector(bigram_hash(ids(), 10240)),
            (std::vector<int64_t>{10239, 5596, 2446, 5614, 9908, 6215, 7250}));
}

TEST(NgramHash, TrigramMatchesSpecVectors) {
  EXPECT_EQ(to_vector(trigram_hash(ids(), 1536)),
            (std::vector<int64_t>{1535, 1535, 962, 1300, 841, 592, 1292}));
  EXPECT_EQ(to_vector(trigram_hash(ids(), 2048)),
            (std::vector<int64_t>{2047, 2047, 435, 1282, 424, 1767, 722}));
}

TEST(NgramHash, RowsAreHashedIndependently) {
  // Each row starts with the padding bucket: no carry-over between rows.
  auto batch = torch::stack({ids(), ids().flip(0)});
  auto b = bigram_hash(batch, 2048);
  EXPECT_EQ(b[0][0].item<int64_t>(), 2047);
  EXPECT_EQ(b[1][0].item<int64_t>(), 2047);
  EXPECT_TRUE(torch::equal(b[0], bigram_hash(ids(), 2048)));
  auto t = trigram_hash(batch, 2048);
  EXPECT_EQ(t[1][1].item<int64_t>(), 2047);
}

TEST(NgramHash, LargeIdsWrapInInt32LikeTheReference) {
  // 36313 * 65535 overflows int32; the reference wraps and takes Python's mod.
  auto big = torch::tensor({65535, 65535, 65000}, torch::kLong);
  auto b = to_vector(bigram_hash(big, 1536));
  for (int64_t v : b) {
    EXPECT_GE(v, 0);
    EXPECT_LT(v, 1536);
  }
  const int32_t wrapped =
      static_cast<int32_t>(36313u * 65535u) ^ static_cast<int32_t>(27191u * 65535u);
  const int64_t expected = ((wrapped % 1535) + 1535) % 1535;
  EXPECT_EQ(b[1], expected);
}

TEST(BigramHash, OutputsZeroAtInitAndAddsTrigramFromTheSameTable) {
  torch::manual_seed(0);
  BigramHash bigram(64, 8, 16, /*trigram=*/true);
  auto x = torch::randint(0, 100, {2, 9});
  EXPECT_EQ(bigram(x, torch::kFloat).abs().max().item<double>(), 0.0);
  EXPECT_EQ(bigram->parameters().size(), 3u);  // scale, embed, proj: no trigram table
  torch::NoGradGuard no_grad;
  bigram->embed->weight.normal_();
  bigram->proj->weight.normal_();
  auto table = bigram->embed->weight;
  auto h = table.index_select(0, bigram_hash(x, 64).flatten()) +
           table.index_select(0, trigram_hash(x, 64).flatten());
  auto expected = 0.05 * h.mm(bigram->proj->weight.t()).view({2, 9, 16});
  EXPECT_TRUE(torch::allclose(bigram(x, torch::kFloat), expected, 1e-5, 1e-6));
}

TEST(SmearGate, BlendsWithThePreviousPositionPerRow) {
  SmearGate smear(4);
  {
    torch::NoGradGuard no_grad;
    smear->gate.copy_(torch::tensor({0.0, 1.0, -1.0, 100.0}));
  }
  auto x = torch::randn({2, 5, 4});
  auto out = smear(x);
  auto g = torch::sigmoid(smear->gate);
  // Position 0 blends with zero; every other position with its predecessor.
  EXPECT_TRUE(torch::allclose(out.select(1, 0), (1 - g) * x.select(1, 0)));
  for (int64_t t = 1; t < 5; ++t) {
    auto expected = (1 - g) * x.select(1, t) + g * x.select(1, t - 1);
    EXPECT_TRUE(torch::allclose(out.select(1, t), expected, 1e-6, 1e-6));
  }
}

TEST(ValueEmbedding, InitAndForward) {
  torch::manual_seed(0);
  ValueEmbedding ve(32, 8, 12);
  EXPECT_NEAR(ve->scale.item<double>(), 0.1, 1e-7);
  EXPECT_EQ(ve->proj->weight.abs().max().item<double>(), 0.0);  // zeroed in the constructor
  EXPECT_NEAR(ve->embed->weight.std().item<double>(), 0.01, 0.002);
  torch::NoGradGuard no_grad;
  ve->proj->weight.normal_();
  auto ids = torch::randint(0, 32, {3, 5});
  auto expected = 0.1 * ve->embed->weight.index_select(0, ids.flatten()).mm(ve->proj->weight.t());
  EXPECT_TRUE(torch::allclose(ve(ids, torch::kFloat), expected.view({3, 5, 12}), 1e-5, 1e-6));
}

}  // namespace
}  // namespace pgolf
