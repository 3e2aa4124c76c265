// Tests for the per-group codec (artifact/pergroup.h, artifact/lrzip.h): the
// greedy L1 row order against a plain reference, the artifact round trip
// with every kind and LQER factors, the container's checks, and one clear
// error without the lrzip program. The round trips skip without lrzip.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "artifact/artifact.h"
#include "artifact/lrzip.h"
#include "artifact/pergroup.h"
#include "quant/lqer.h"
#include "quant/scheme.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

using Kind = QuantizedEntry::Kind;

// The script's _similarity_sort_l1 written out: fp32 distances, first minimum.
std::vector<uint16_t> reference_order(const torch::Tensor& m) {
  const int64_t n = m.size(0);
  const torch::Tensor f = m.to(torch::kFloat32);
  std::vector<bool> used(n, false);
  std::vector<uint16_t> order = {0};
  used[0] = true;
  int64_t cur = 0;
  for (int64_t step = 1; step < n; ++step) {
    int64_t best = -1;
    float best_d = std::numeric_limits<float>::infinity();
    for (int64_t r = 0; r < n; ++r) {
      if (used[r]) continue;
      const float d = (f[r] - f[cur]).abs().sum().item<float>();
      if (d < best_d) {
        best_d = d;
        best = r;
      }
    }
    used[best] = true;
    order.push_back(static_cast<uint16_t>(best));
    cur = best;
  }
  return order;
}

TEST(Pergroup, SimilarityOrderIsTheGreedyL1Walk) {
  torch::manual_seed(2);
  torch::Tensor m = torch::randint(-31, 32, {40, 24}, torch::kInt8);
  m[7] = m[3];  // ties go to the lowest index
  m[19] = m[3];
  const auto order = similarity_order(m.data_ptr<int8_t>(), 40, 24);
  EXPECT_EQ(order, reference_order(m));
  EXPECT_EQ(order[0], 0);
}

TEST(Pergroup, GroupsByRole) {
  EXPECT_EQ(pergroup_group("tok_emb.weight"), 0);
  EXPECT_EQ(pergroup_group("blocks.10.attn.c_k.weight"), 1);
  EXPECT_EQ(pergroup_group("blocks.0.attn.c_q.weight"), 2);
  EXPECT_EQ(pergroup_group("blocks.3.attn.proj.weight"), 4);
  EXPECT_EQ(pergroup_group("blocks.3.mlp.proj.weight"), 6);
  EXPECT_EQ(pergroup_group("blocks.3.attn.attn_gate_w"), -1);
  EXPECT_EQ(pergroup_group("blocks.x.mlp.fc.weight"), -1);
  EXPECT_EQ(pergroup_group("lm_head.weight"), -1);
}

// A miniature of #1855's export: grouped int6/int7 codes in two layers (layer
// 1 listed first), one with LQER, a gate, kept and passthrough tensors.
QuantizedModel grouped_model() {
  torch::manual_seed(9);
  QuantizedModel m;
  m.format = std::string(scheme_quant_format(SchemeId::kPr1855));
  const auto codes = [](std::string name, int64_t rows, int64_t cols, int bits) {
    QuantizedEntry e;
    e.name = std::move(name);
    e.kind = Kind::kIntNPerRow;
    e.bits = bits;
    const int lim = (1 << (bits - 1)) - 1;
    e.q = torch::clamp(torch::round(torch::randn({rows, cols}) * lim / 4), -lim, lim)
              .to(torch::kInt8);
    e.scale = (torch::rand({rows}) * 0.01).to(torch::kHalf);
    return e;
  };
  m.entries.push_back(codes("tok_emb.weight", 64, 32, 7));
  m.entries.push_back(codes("blocks.1.attn.c_q.weight", 32, 32, 6));
  m.entries.push_back(codes("blocks.0.attn.c_q.weight", 32, 32, 6));
  m.entries.push_back(codes("blocks.0.mlp.fc.weight", 96, 32, 6));
  m.entries.back().lqer = lqer_factorize(torch::randn({96, 32}), LqerOptions{});
  m.entries.push_back(codes("blocks.0.mlp.proj.weight", 32, 96, 6));
  QuantizedEntry gate;
  gate.name = "blocks.0.attn.attn_gate_w";
  gate.kind = Kind::kInt8PerRow;
  gate.bits = 8;
  gate.q = torch::randint(-127, 128, {4, 12}, torch::kInt8);
  gate.scale = torch::rand({4}).to(torch::kHalf);
  m.entries.push_back(gate);
  QuantizedEntry kept;
  kept.name = "blocks.0.attn_scale";
  kept.kind = Kind::kKeptFloat;
  kept.q = torch::rand({32}).to(torch::kHalf);
  m.entries.push_back(kept);
  return m;
}

void expect_same_model(const QuantizedModel& a, const QuantizedModel& b) {
  ASSERT_EQ(a.entries.size(), b.entries.size());
  for (size_t i = 0; i < a.entries.size(); ++i) {
    const QuantizedEntry& x = a.entries[i];
    const QuantizedEntry& y = b.entries[i];
    SCOPED_TRACE(x.name);
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.kind, y.kind);
    EXPECT_TRUE(torch::equal(x.q, y.q));
    EXPECT_EQ(x.scale.defined(), y.scale.defined());
    if (x.scale.defined()) {
      EXPECT_TRUE(torch::equal(x.scale, y.scale));
    }
    EXPECT_EQ(x.lqer.defined(), y.lqer.defined());
    if (x.lqer.defined()) {
      EXPECT_TRUE(torch::equal(x.lqer.a, y.lqer.a));
      EXPECT_TRUE(torch::equal(x.lqer.b_scale, y.lqer.b_scale));
      EXPECT_TRUE(torch::equal(lqer_correction(x.lqer), lqer_correction(y.lqer)));
    }
  }
}

TEST(Pergroup, ArtifactRoundTripsBitForBit) {
  if (!lrzip_available()) GTEST_SKIP() << "no lrzip program";
  const QuantizedModel model = grouped_model();
  const std::string bytes = encode_artifact(model, nlohmann::json::object(), Codec::kPergroup, 9);
  const LoadedArtifact loaded = decode_artifact(bytes);
  EXPECT_EQ(loaded.info.codec, Codec::kPergroup);
  EXPECT_EQ(loaded.info.format_version, 3u);
  ASSERT_EQ(loaded.info.pergroup_streams.size(), 9u);
  EXPECT_GT(loaded.info.pergroup_streams[0], 0u);  // tok_emb
  EXPECT_EQ(loaded.info.pergroup_streams[1], 0u);  // no c_k
  EXPECT_GT(loaded.info.pergroup_streams[8], 0u);  // row orders of tok_emb, c_q, fc
  expect_same_model(model, loaded.model);
  // Reproducible: the same model gives the same compressed bytes.
  const LoadedArtifact again =
      decode_artifact(encode_artifact(model, nlohmann::json::object(), Codec::kPergroup, 9));
  EXPECT_EQ(again.info.compressed_crc32, loaded.info.compressed_crc32);
}

TEST(Pergroup, ContainerDamageIsOneClearError) {
  if (!lrzip_available()) GTEST_SKIP() << "no lrzip program";
  // One 8 x 4 c_q matrix at offset 0 of a 40-byte payload.
  std::string payload(40, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i % 7);
  const std::vector<CodeMatrix> codes = {{"blocks.0.attn.c_q.weight", 8, 4, 0}};
  const std::string blob = pergroup_compress(payload, codes);
  EXPECT_EQ(pergroup_decompress(blob, codes, payload.size()), payload);
  EXPECT_PGOLF_ERROR(pergroup_decompress("PGR", codes, 40), "bad magic or truncated");
  std::string bad = blob;
  bad[4] = 8;
  EXPECT_PGOLF_ERROR(pergroup_decompress(bad, codes, 40), "8 streams, expected 9");
  EXPECT_PGOLF_ERROR(pergroup_decompress(blob.substr(0, blob.size() - 1), codes, 40),
                     "runs past the end");
  EXPECT_PGOLF_ERROR(pergroup_decompress(blob + "x", codes, 40), "trailing bytes");
  // A damaged ZPAQ stream: stream 2 (c_q) starts after the 44-byte table and
  // the two empty streams before it.
  bad = blob;
  bad[44 + 40] = static_cast<char>(bad[44 + 40] ^ 0x55);
  EXPECT_THROW(pergroup_decompress(bad, codes, 40), Error);
  // Matrices outside the payload.
  EXPECT_PGOLF_ERROR(pergroup_decompress(blob, {{"blocks.0.attn.c_q.weight", 8, 8, 0}}, 40),
                     "lies outside the 40-byte payload");
}

TEST(Pergroup, WithoutLrzipTheCodecSaysWhatIsMissing) {
  const char* path = std::getenv("PATH");
  const std::string saved = path ? path : "";
  setenv("PATH", "/nonexistent", 1);
  EXPECT_FALSE(lrzip_available());
  EXPECT_PGOLF_ERROR(
      encode_artifact(grouped_model(), nlohmann::json::object(), Codec::kPergroup, 9),
      "needs the lrzip program (Debian package 'lrzip')");
  setenv("PATH", saved.c_str(), 1);
}

TEST(Pergroup, PlainCodecsRefuseIt) {
  EXPECT_PGOLF_ERROR(compress("abc", Codec::kPergroup), "needs the artifact's tensor table");
  EXPECT_PGOLF_ERROR(decompress("abc", Codec::kPergroup, 3), "needs the artifact's tensor table");
}

}  // namespace
}  // namespace pgolf
