// Tests for quant/prune: magnitude pruning hits its fraction on exactly the
// eligible tensors; selective ±1 pruning zeroes the cheapest ±1 codes first
// and stops at the smallest count that meets the byte budget.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "artifact/artifact.h"
#include "quant/prune.h"
#include "tests/quant/single_thread.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

class QuantPruneTest : public testing::SingleThreadTest {};

using Kind = QuantizedEntry::Kind;

TEST_F(QuantPruneTest, MagnitudeHitsItsFraction) {
  torch::manual_seed(3);
  for (const double frac : {0.03, 0.1, 0.5}) {
    torch::Tensor w = torch::randn({300, 256});  // 76,800 > 65,536
    const torch::Tensor before = w.clone();
    const int64_t zeroed = magnitude_prune_tensor(w, frac);
    const double expected = frac * static_cast<double>(w.numel());
    EXPECT_LE(std::abs(static_cast<double>(zeroed) - expected), 1.0) << frac;
    EXPECT_EQ(w.eq(0).sum().item<int64_t>(), zeroed);
    // Exactly the smallest magnitudes went.
    const torch::Tensor gone = w.eq(0);
    EXPECT_LE(before.abs().masked_select(gone).max().item<float>(),
              before.abs().masked_select(~gone).min().item<float>());
    EXPECT_TRUE(torch::equal(w.masked_select(~gone), before.masked_select(~gone)));
  }
}

TEST_F(QuantPruneTest, MagnitudeThresholdByHand) {
  // |w| = 1..100 (shuffled signs): quantile 0.03 = 1 + 0.03 * 99 = 3.97, so
  // 1, 2 and 3 go (strictly below).
  torch::Tensor w =
      torch::arange(1, 101, torch::kFloat32) * torch::tensor({1.f, -1.f}).repeat({50});
  EXPECT_EQ(magnitude_prune_tensor(w, 0.03), 3);
  EXPECT_EQ(w.eq(0).sum().item<int64_t>(), 3);
  EXPECT_EQ(w[3].item<float>(), -4.f);
}

TEST_F(QuantPruneTest, MagnitudeTouchesOnlyLargeFloatMatrices) {
  torch::manual_seed(4);
  StateDict dict;
  dict.emplace_back("blocks.0.mlp.fc.weight", torch::randn({300, 256}));
  dict.emplace_back("bigram.proj.weight", torch::randn({512, 128}));  // exactly 65,536
  dict.emplace_back("big.vector", torch::randn({70'000}));
  dict.emplace_back("ids", torch::randint(1, 5, {300, 256}, torch::kInt64));
  const StateDict before = {
      {"a", dict[1].second.clone()}, {"b", dict[2].second.clone()}, {"c", dict[3].second.clone()}};
  const MagnitudePruneStats stats = magnitude_prune(dict);
  EXPECT_EQ(stats.tensors, 1);
  EXPECT_EQ(stats.elements, 76'800);
  EXPECT_NEAR(static_cast<double>(stats.zeroed), 0.03 * 76'800, 1.0);
  EXPECT_TRUE(torch::equal(dict[1].second, before[0].second));
  EXPECT_TRUE(torch::equal(dict[2].second, before[1].second));
  EXPECT_TRUE(torch::equal(dict[3].second, before[2].second));
  EXPECT_FALSE(magnitude_prunable(dict[1].second));
  EXPECT_TRUE(magnitude_prunable(dict[0].second));
}

// Two int6 per-row tensors whose rows have distinct scales, plus an int8
// tensor whose ±1 codes are never candidates.
QuantizedModel coded_model(int64_t cols = 32) {
  torch::manual_seed(9);
  QuantizedModel model;
  for (int t = 0; t < 2; ++t) {
    QuantizedEntry e;
    e.name = "blocks." + std::to_string(t) + ".attn.c_q.weight";
    e.kind = Kind::kIntNPerRow;
    e.bits = 6;
    e.q = torch::randint(-3, 4, {8, cols}, torch::kInt8);
    e.scale = (torch::arange(8, torch::kFloat32) * 0.01 + 0.02 + 0.001 * t).to(torch::kFloat16);
    model.entries.push_back(e);
  }
  QuantizedEntry e8;
  e8.name = "tok_emb.weight";
  e8.kind = Kind::kInt8PerRow;
  e8.bits = 8;
  e8.q = torch::ones({4, 8}, torch::kInt8);
  e8.scale = torch::full({4}, 1e-4, torch::kFloat16);
  model.entries.push_back(e8);
  return model;
}

int64_t ones_in(const QuantizedModel& model) {
  int64_t n = 0;
  for (const auto& e : model.entries) {
    if (e.kind == Kind::kIntNPerRow) n += e.q.abs().eq(1).sum().item<int64_t>();
  }
  return n;
}

int64_t nonzero_in(const QuantizedModel& model) {
  int64_t n = 0;
  for (const auto& e : model.entries) n += e.q.ne(0).sum().item<int64_t>();
  return n;
}

TEST_F(QuantPruneTest, SelectiveReachesTheBudgetWithTheFewestCodes) {
  QuantizedModel model = coded_model();
  const int64_t candidates = ones_in(model);
  const int64_t nonzero = nonzero_in(model);
  // A size that falls by 3 bytes per zeroed code: the budget needs exactly
  // ceil(100 / 3) = 34 codes.
  const auto size_of = [](const QuantizedModel& m) { return 1000 + 3 * nonzero_in(m); };
  const int64_t target = 1000 + 3 * nonzero - 100;
  const SelectivePruneResult r = selective_prune(model, target, size_of);
  EXPECT_EQ(r.candidates, candidates);
  EXPECT_EQ(r.pruned, 34);
  EXPECT_EQ(r.size_before, 1000 + 3 * nonzero);
  EXPECT_EQ(r.size_after, 1000 + 3 * (nonzero - 34));
  EXPECT_LE(r.size_after, target);
  EXPECT_LE(r.size_evaluations, 2 + 1 + static_cast<int64_t>(std::ceil(std::log2(candidates))));
  EXPECT_EQ(ones_in(model), candidates - 34);
  // The cheapest went first: row 0 of tensor 0 (scale 0.02), then row 0 of
  // tensor 1 (0.021), then row 1 of tensor 0 (0.03), ...; never an int8 code.
  const QuantizedModel original = coded_model();
  const int64_t r00 = original.entries[0].q[0].abs().eq(1).sum().item<int64_t>();
  const int64_t r10 = original.entries[1].q[0].abs().eq(1).sum().item<int64_t>();
  ASSERT_LT(r00 + r10, 34);
  EXPECT_EQ(model.entries[0].q[0].abs().eq(1).sum().item<int64_t>(), 0);
  EXPECT_EQ(model.entries[1].q[0].abs().eq(1).sum().item<int64_t>(), 0);
  EXPECT_TRUE(torch::equal(model.entries[0].q[7], original.entries[0].q[7]));
  EXPECT_TRUE(torch::equal(model.entries[2].q, original.entries[2].q));
  // Only ±1 codes changed, and only to 0.
  for (int t = 0; t < 2; ++t) {
    const torch::Tensor changed = model.entries[t].q.ne(original.entries[t].q);
    EXPECT_TRUE(original.entries[t].q.masked_select(changed).abs().eq(1).all().item<bool>());
    EXPECT_TRUE(model.entries[t].q.masked_select(changed).eq(0).all().item<bool>());
  }
}

TEST_F(QuantPruneTest, SelectiveAlreadyFitsOrCannotFit) {
  const auto size_of = [](const QuantizedModel& m) { return 1000 + 3 * nonzero_in(m); };
  QuantizedModel model = coded_model();
  const int64_t size0 = size_of(model);
  SelectivePruneResult r = selective_prune(model, size0, size_of);
  EXPECT_EQ(r.pruned, 0);
  EXPECT_EQ(r.size_evaluations, 1);
  EXPECT_EQ(ones_in(model), ones_in(coded_model()));
  // Even zeroing every candidate is not enough: all of them go.
  r = selective_prune(model, 10, size_of);
  EXPECT_EQ(r.pruned, r.candidates);
  EXPECT_EQ(ones_in(model), 0);
  EXPECT_GT(r.size_after, 10);
}

TEST_F(QuantPruneTest, SelectiveAgainstRealCompressedSize) {
  // The artifact's own zstd size is not strictly monotone in n, but the
  // binary search still ends at an n that fits while n - 1 did not. Each
  // zeroed ±1 code removes one nonzero code, which identifies n in the callback.
  const nlohmann::json config = {{"test", 1}};
  QuantizedModel model = coded_model(/*cols=*/512);
  const int64_t nonzero = nonzero_in(model);
  std::map<int64_t, int64_t> size_at;  // n -> size, as evaluated
  const auto size_of = [&](const QuantizedModel& m) {
    const auto size = static_cast<int64_t>(encode_artifact(m, config, Codec::kZstd, 3).size());
    size_at[nonzero - nonzero_in(m)] = size;
    return size;
  };
  // A budget halfway between no pruning and pruning every candidate.
  QuantizedModel all = model;
  const SelectivePruneResult everything = selective_prune(all, 0, size_of);
  const int64_t target = (everything.size_before + everything.size_after) / 2;
  size_at.clear();
  const SelectivePruneResult r = selective_prune(model, target, size_of);
  ASSERT_GT(r.pruned, 0);
  ASSERT_LT(r.pruned, r.candidates);
  EXPECT_EQ(nonzero - nonzero_in(model), r.pruned);
  EXPECT_LE(r.size_after, target);
  EXPECT_EQ(r.size_after, size_of(model));
  ASSERT_EQ(size_at.count(r.pruned - 1), 1u);
  EXPECT_GT(size_at[r.pruned - 1], target);
}

}  // namespace
}  // namespace pgolf
