// #1855's export against the record's own functions (gptq_mixed_quantize,
// dequantize_mixed, _serialize_pergroup), run on the CPU by
// bench/reference/pr1855_quant.py on its example: the record's GPT shrunk to
// 2 blocks of width 512, perturbed, with outliers that saturate the clip, and
// Hessians with dead columns. Both sides read the same state dict and
// Hessians (safetensors) on one thread: MKL's Cholesky and SVD round
// differently on two. Skips without the script or a Python with torch.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "artifact/artifact.h"
#include "artifact/lrzip.h"
#include "common/fs.h"
#include "io/safetensors.h"
#include "quant/scheme.h"
#include "tests/quant/single_thread.h"
#include "tests/reference_scripts.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

using testing::ScratchDir;

class Pr1855QuantParity : public testing::SingleThreadTest {
 protected:
  void SetUp() override {
    testing::SingleThreadTest::SetUp();
    script_ = testing::official_script(dir_, testing::kPr1855Script);
    if (script_.empty()) {
      GTEST_SKIP() << "no #1855 train_gpt.py (set PGOLF_PR1855_TRAIN_GPT or PGOLF_OFFICIAL_REPO)";
    }
    if (!testing::python_has_torch()) GTEST_SKIP() << "no python3 (or $PGOLF_PYTHON) with torch";
  }

  // Runs the harness on its example with `args`; fails the test on an error.
  void harness(const std::string& args) {
    const auto run =
        testing::run_harness("pr1855_quant.py", script_,
                             "--make-example '" + (dir_ / "ex").string() + "' --threads 1 " + args,
                             dir_ / "harness.log");
    ASSERT_EQ(run.rc, 0) << run.output;
    output_ = run.output;
  }

  // pgolf's export of the example, as the record's settings (the defaults).
  QuantizedModel quantize() const {
    const StateDict weights = read_safetensors(dir_ / "ex" / "weights.safetensors");
    const StateDict h = read_safetensors(dir_ / "ex" / "hessians.safetensors");
    const Hessians hessians(h.begin(), h.end());
    return quantize_model(weights, quant_scheme("pr1855"), &hessians);
  }

  std::string path(const char* name) const { return (dir_ / name).string(); }

  ScratchDir dir_;
  std::filesystem::path script_;
  std::string output_;
};

const torch::Tensor& tensor_named(const StateDict& dict, const std::string& name) {
  for (const auto& [n, t] : dict) {
    if (n == name) return t;
  }
  throw std::runtime_error("no tensor " + name);
}

bool bit_equal(const torch::Tensor& a, const torch::Tensor& b) {
  return a.scalar_type() == b.scalar_type() && a.sizes() == b.sizes() && torch::equal(a, b);
}

TEST_F(Pr1855QuantParity, CodesScalesGatesAndLqerFactorsEqualTheScripts) {
  harness("--out-quant '" + path("q.safetensors") + "' --out-meta '" + path("m.json") + "'");
  const StateDict result = read_safetensors(dir_ / "q.safetensors");
  const QuantizedModel model = quantize();
  std::map<std::string, const QuantizedEntry*> entries;
  for (const auto& e : model.entries) entries[e.name] = &e;

  int gptq = 0, gates = 0, kept = 0, lqer = 0;
  for (const auto& [key, t] : result) {
    const auto strip = [&](const char* suffix) {
      return key.substr(0, key.size() - std::strlen(suffix));
    };
    const auto ends = [&](const char* suffix) { return key.ends_with(suffix); };
    SCOPED_TRACE(key);
    if (ends(".q")) {
      const QuantizedEntry& e = *entries.at(strip(".q"));
      EXPECT_EQ(e.kind, QuantizedEntry::Kind::kIntNPerRow);
      EXPECT_TRUE(bit_equal(e.q, t));
      EXPECT_TRUE(bit_equal(e.scale, tensor_named(result, strip(".q") + ".scale")));
      ++gptq;
    } else if (ends(".gq")) {
      const QuantizedEntry& e = *entries.at(strip(".gq"));
      EXPECT_EQ(e.kind, QuantizedEntry::Kind::kInt8PerRow);
      EXPECT_TRUE(bit_equal(e.q, t));
      EXPECT_TRUE(bit_equal(e.scale, tensor_named(result, strip(".gq") + ".gs")));
      ++gates;
    } else if (ends(".lqA_a")) {
      const LowRankFactors& f = entries.at(strip(".lqA_a"))->lqer;
      ASSERT_TRUE(f.defined());
      EXPECT_TRUE(f.asymmetric);
      EXPECT_TRUE(bit_equal(f.a, t));
      EXPECT_TRUE(bit_equal(f.a_scale, tensor_named(result, strip(".lqA_a") + ".lqAs_a")));
      EXPECT_TRUE(bit_equal(f.b, tensor_named(result, strip(".lqA_a") + ".lqB_a")));
      EXPECT_TRUE(bit_equal(f.b_scale, tensor_named(result, strip(".lqA_a") + ".lqBs_a")));
      ++lqer;
    } else if (entries.count(key)) {
      const QuantizedEntry& e = *entries.at(key);
      EXPECT_EQ(e.kind, QuantizedEntry::Kind::kKeptFloat);
      EXPECT_TRUE(bit_equal(e.q, t));
      ++kept;
    }
  }
  // The example's routes (bench/reference/README.md): tok_emb and 4 matrices
  // of each of the 2 blocks through GPTQ, 2 gates, LQER on 3, the rest fp16.
  EXPECT_EQ(gptq, 9);
  EXPECT_EQ(gates, 2);
  EXPECT_EQ(lqer, 3);
  EXPECT_EQ(gptq + gates + kept, static_cast<int>(model.entries.size()));
  int with_lqer = 0;
  for (const auto& e : model.entries) with_lqer += e.lqer.defined();
  EXPECT_EQ(with_lqer, 3);
}

TEST_F(Pr1855QuantParity, DequantizedWeightsEqualDequantizeMixedBitForBit) {
  harness("--out-dequant '" + path("d.safetensors") + "'");
  const StateDict expected = read_safetensors(dir_ / "d.safetensors");
  const StateDict restored = dequantize(quantize());
  ASSERT_EQ(restored.size(), expected.size());
  for (size_t i = 0; i < restored.size(); ++i) {
    SCOPED_TRACE(restored[i].first);
    EXPECT_EQ(restored[i].first, expected[i].first);
    // The harness writes fp32; a bf16 tok_emb is exact in it.
    EXPECT_TRUE(torch::equal(restored[i].second.to(torch::kFloat32), expected[i].second));
  }
}

TEST_F(Pr1855QuantParity, PerGroupStreamsMatchTheScriptsGroupForGroup) {
  if (!lrzip_available()) GTEST_SKIP() << "no lrzip program";
  harness("--pergroup '" + path("pg.bin") + "'");
  // The script's container: "PGRP", count, lengths.
  const std::string theirs = read_file(dir_ / "pg.bin");
  ASSERT_GE(theirs.size(), 8u + 9 * 4);
  std::vector<uint32_t> their_sizes(9);
  std::memcpy(their_sizes.data(), theirs.data() + 8, 9 * 4);

  const std::string artifact =
      encode_artifact(quantize(), nlohmann::json::object(), Codec::kPergroup, 9);
  const LoadedArtifact loaded = decode_artifact(artifact);
  const std::vector<uint64_t>& ours = loaded.info.pergroup_streams;
  ASSERT_EQ(ours.size(), 9u);
  // The 7 groups hold the same codes in the same order (transposed, rows
  // sorted), so lrzip writes the same bytes; the row orders too. The
  // remainder differs by design: the script pickles a dict, pgolf stores
  // the payload bytes the tensor table describes.
  for (size_t g = 0; g < 7; ++g) EXPECT_EQ(ours[g], their_sizes[g]) << "group " << g;
  EXPECT_EQ(ours[8], their_sizes[8]) << "row orders";
  std::printf("pergroup remainder: pgolf %llu bytes, script %u bytes\n",
              static_cast<unsigned long long>(ours[7]), their_sizes[7]);
}

}  // namespace
}  // namespace pgolf
