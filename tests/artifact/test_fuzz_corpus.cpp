// The fuzz corpus (fuzz/corpus/) without libFuzzer: every file decodes (or,
// if truncated, fails cleanly), and a few thousand deterministic mutations of
// them (byte flips, truncations, insertions, header edits with a valid CRC,
// payload edits with valid CRCs) each decode or give one pgolf::Error.
// DISABLED_WriteCorpus regenerates the current version's files (older
// versions' files stay as their writers left them):
//   ./build/pgolf_tests --gtest_also_run_disabled_tests --gtest_filter='FuzzCorpus.DISABLED_*'
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "artifact/artifact.h"
#include "common/fs.h"
#include "fuzz/fuzz_check.h"
#include "quant/lqer.h"
#include "quant/scheme.h"
#include "tests/artifact/artifact_forge.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

using Json = nlohmann::json;
using Kind = QuantizedEntry::Kind;

std::filesystem::path corpus_dir() {
  return std::filesystem::path(PGOLF_SOURCE_DIR) / "fuzz" / "corpus";
}

// A tiny model of every kind: intN per row / per tensor, int8 per row / per
// tensor, kept fp16 / fp32, passthrough.
QuantizedModel tiny_model(const char* format, int bits, CodeStorage storage) {
  torch::manual_seed(bits);
  QuantizedModel m;
  m.format = format;
  m.storage = storage;
  const int lim = 1 << (bits - 1);
  auto add = [&](std::string name, Kind kind, torch::Tensor q, torch::Tensor scale, int b) {
    QuantizedEntry e;
    e.name = std::move(name);
    e.kind = kind;
    e.q = q;
    e.scale = scale;
    e.bits = b;
    e.orig_dtype =
        q.is_floating_point() || is_integer_kind(kind) ? torch::kFloat32 : q.scalar_type();
    m.entries.push_back(std::move(e));
  };
  if (bits < 8) {
    add("blocks.0.attn.c_q.weight", Kind::kIntNPerRow,
        torch::randint(-lim, lim, {3, 7}, torch::kInt8), torch::rand({3}).to(torch::kHalf), bits);
    add("blocks.0.mlp.gain", Kind::kIntNPerTensor, torch::randint(-lim, lim, {5}, torch::kInt8),
        torch::tensor(0.25).to(torch::kHalf), bits);
  }
  add("blocks.0.mlp.fc.weight", Kind::kInt8PerRow, torch::randint(-127, 128, {2, 4}, torch::kInt8),
      torch::rand({2}).to(torch::kHalf), 8);
  add("bigram.scale_vec", Kind::kInt8PerTensor, torch::randint(-127, 128, {6}, torch::kInt8),
      torch::tensor(0.5f), 8);
  add("tok_emb.weight", Kind::kKeptFloat, torch::randn({4, 3}).to(torch::kHalf), {}, 0);
  add("blocks.0.attn_scale", Kind::kKeptFloat, torch::rand({4}), {}, 0);
  add("step", Kind::kPassthrough, torch::tensor({7}, torch::kInt64), {}, 0);
  return m;
}

// #1855's export in miniature: int7 / int6 codes, one matrix with
// asymmetric LQER factors, one with symmetric ones, a gate, a kept tensor;
// names the per-group codec groups.
QuantizedModel tiny_pr1855_model() {
  torch::manual_seed(18);
  QuantizedModel m;
  m.format = std::string(scheme_quant_format(SchemeId::kPr1855));
  const auto add_codes = [&](std::string name, int64_t rows, int64_t cols, int bits) {
    QuantizedEntry e;
    e.name = std::move(name);
    e.kind = Kind::kIntNPerRow;
    e.bits = bits;
    const int lim = (1 << (bits - 1)) - 1;
    e.q = torch::randint(-lim, lim + 1, {rows, cols}, torch::kInt8);
    e.scale = torch::rand({rows}).to(torch::kHalf);
    m.entries.push_back(std::move(e));
  };
  add_codes("tok_emb.weight", 8, 4, 7);
  add_codes("blocks.0.attn.c_q.weight", 4, 4, 6);
  add_codes("blocks.0.mlp.fc.weight", 8, 16, 6);
  m.entries.back().lqer = lqer_factorize(torch::randn({8, 16}), LqerOptions{});
  LqerOptions symmetric;
  symmetric.asymmetric = false;
  m.entries[0].lqer = lqer_factorize(torch::randn({8, 4}), symmetric);
  QuantizedEntry gate;
  gate.name = "blocks.0.attn.attn_gate_w";
  gate.kind = Kind::kInt8PerRow;
  gate.bits = 8;
  gate.q = torch::randint(-127, 128, {2, 3}, torch::kInt8);
  gate.scale = torch::rand({2}).to(torch::kHalf);
  m.entries.push_back(gate);
  QuantizedEntry kept;
  kept.name = "blocks.0.attn_scale";
  kept.kind = Kind::kKeptFloat;
  kept.q = torch::rand({4}).to(torch::kHalf);
  m.entries.push_back(kept);
  return m;
}

// Files earlier pgolf versions wrote, kept as they are: versions 1 and 2
// must still be read (the generator below writes the current version only).
const std::vector<std::string>& legacy_files() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out = {"v1_int8_none.pgolf",
                                    "trunc_v1_int8_none.pgolf",
                                    "trunc_v2_int5_container_zstd.pgolf",
                                    "trunc_v2_int6_packed_brotli.pgolf",
                                    "trunc_v2_int6_packed_none_header.pgolf",
                                    "trunc_v2_int6_packed_none_payload.pgolf",
                                    "trunc_v2_int6_packed_none_preamble.pgolf"};
    for (const char* c : {"none", "zlib", "zstd", "lzma", "brotli"}) {
      for (const char* kind : {"v2_int8_", "v2_int5_container_", "v2_int6_packed_"}) {
        out.push_back(std::string(kind) + c + ".pgolf");
      }
    }
    return out;
  }();
  return names;
}

// The current version's corpus: file name -> bytes. Names starting "trunc_"
// must not decode. The per-group file needs the lrzip program.
std::map<std::string, std::string> build_corpus() {
  const Json config = {{"model", {{"num_layers", 1}}}, {"preset", "fuzz"}};
  std::map<std::string, std::string> files;
  const std::string int8_format(kInt8Format);
  const std::string pr1406(scheme_quant_format(SchemeId::kPr1406));
  for (const Codec codec :
       {Codec::kNone, Codec::kZlib, Codec::kZstd, Codec::kLzma, Codec::kBrotli}) {
    const std::string c(codec_name(codec));
    files["v3_pr1855_lqer_" + c + ".pgolf"] =
        encode_artifact(tiny_pr1855_model(), config, codec, 0);
  }
  files["v3_int8_zstd.pgolf"] = encode_artifact(
      tiny_model(int8_format.c_str(), 8, CodeStorage::kInt8Container), config, Codec::kZstd, 0);
  files["v3_int6_packed_brotli.pgolf"] = encode_artifact(
      tiny_model(pr1406.c_str(), 6, CodeStorage::kBitPacked), config, Codec::kBrotli, 0);
  files["v3_pr1855_pergroup.pgolf"] =
      encode_artifact(tiny_pr1855_model(), config, Codec::kPergroup, 9);
  const std::string lqer = files["v3_pr1855_lqer_none.pgolf"];
  files["trunc_v3_pr1855_lqer_none.pgolf"] = lqer.substr(0, lqer.size() - 5);
  const std::string grouped = files["v3_pr1855_pergroup.pgolf"];
  files["trunc_v3_pr1855_pergroup.pgolf"] = grouped.substr(0, grouped.size() - 1);
  return files;
}

TEST(FuzzCorpus, DISABLED_WriteCorpus) {
  std::filesystem::create_directories(corpus_dir());
  for (const auto& [name, bytes] : build_corpus()) write_file_atomic(corpus_dir() / name, bytes);
}

std::vector<std::pair<std::string, std::string>> read_corpus() {
  std::vector<std::pair<std::string, std::string>> files;
  for (const auto& entry : std::filesystem::directory_iterator(corpus_dir())) {
    files.emplace_back(entry.path().filename().string(), read_file(entry.path()));
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST(FuzzCorpus, EveryFileDecodesOrIsATruncationThatFailsCleanly) {
  const auto files = read_corpus();
  ASSERT_GE(files.size(), 15u) << "corpus missing in " << corpus_dir();
  for (const auto& [name, bytes] : files) {
    const bool truncated = name.rfind("trunc_", 0) == 0;
    EXPECT_EQ(fuzz::decode_or_clean_error(bytes), !truncated) << name;
  }
  // The committed corpus is the legacy files and what the generator writes
  // (the creation time differs, so compare names).
  std::set<std::string> expected(legacy_files().begin(), legacy_files().end());
  for (const auto& [name, bytes] : build_corpus()) expected.insert(name);
  std::set<std::string> present;
  for (const auto& [name, bytes] : files) present.insert(name);
  EXPECT_EQ(present, expected);
}

// A JSON value of a random kind, to put where another was.
Json random_json(std::mt19937_64& rng) {
  switch (rng() % 9) {
    case 0:
      return nullptr;
    case 1:
      return -1;
    case 2:
      return static_cast<int64_t>(rng() % 100);
    case 3:
      return static_cast<uint64_t>(rng());
    case 4:
      return "int8_per_row";
    case 5:
      return Json::array({1, 2});
    case 6:
      return Json::object();
    case 7:
      return 0.5;
    default:
      return static_cast<int64_t>(1) << (rng() % 63);
  }
}

// Replaces or removes one random leaf field of the header's tensor table or payload block.
void mutate_header(Json& header, std::mt19937_64& rng) {
  Json* node = &header;
  for (int depth = 0; depth < 4; ++depth) {
    if (node->is_object() && !node->empty()) {
      auto it = node->begin();
      std::advance(it, static_cast<long>(rng() % node->size()));
      if (rng() % 3 == 0 || !(it->is_object() || it->is_array())) {
        if (rng() % 5 == 0) {
          node->erase(it.key());
        } else {
          *it = random_json(rng);
        }
        return;
      }
      node = &*it;
    } else if (node->is_array() && !node->empty()) {
      Json& child = (*node)[rng() % node->size()];
      if (rng() % 3 == 0 || !(child.is_object() || child.is_array())) {
        child = random_json(rng);
        return;
      }
      node = &child;
    } else {
      *node = random_json(rng);
      return;
    }
  }
}

std::string mutate(const std::string& input, std::mt19937_64& rng) {
  std::string s = input;
  const int rounds = 1 + static_cast<int>(rng() % 3);
  for (int r = 0; r < rounds; ++r) {
    const bool parsable = s.size() >= 24 && s.compare(0, 8, "PGOLFART") == 0;
    switch (rng() % 7) {
      case 0:  // flip a bit
        if (!s.empty()) s[rng() % s.size()] ^= static_cast<char>(1 << (rng() % 8));
        break;
      case 1:  // set a byte
        if (!s.empty()) s[rng() % s.size()] = static_cast<char>(rng());
        break;
      case 2:  // truncate
        s.resize(s.empty() ? 0 : rng() % s.size());
        break;
      case 3:  // insert bytes
        s.insert(s.empty() ? 0 : rng() % s.size(),
                 std::string(1 + rng() % 8, static_cast<char>(rng())));
        break;
      case 4:  // delete a range
        if (!s.empty()) {
          const size_t at = rng() % s.size();
          s.erase(at, 1 + rng() % 16);
        }
        break;
      default:  // edit the header or the payload behind valid CRCs
        if (!parsable) break;
        try {
          s = testing::forge(s, [&](Json& header, std::string& payload) {
            if (rng() % 2 == 0 || payload.empty()) {
              mutate_header(header, rng);
            } else {
              payload[rng() % payload.size()] = static_cast<char>(rng());
            }
          });
        } catch (const std::exception&) {
          // the header no longer parses (an earlier round damaged it): keep the bytes
        }
        break;
    }
  }
  return s;
}

TEST(FuzzCorpus, RandomMutationsDecodeOrFailWithOneCleanError) {
  const auto files = read_corpus();
  ASSERT_FALSE(files.empty());
  std::mt19937_64 rng(20240607);
  int decoded = 0, rejected = 0;
  constexpr int kMutations = 4000;
  for (int i = 0; i < kMutations; ++i) {
    const auto& [name, bytes] = files[rng() % files.size()];
    const std::string input = mutate(bytes, rng);
    bool ok = false;
    try {
      ok = fuzz::decode_or_clean_error(input);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "mutation " << i << " of " << name
                    << " threw a non-pgolf error: " << e.what();
      continue;
    }
    (ok ? decoded : rejected) += 1;
  }
  EXPECT_EQ(decoded + rejected, kMutations);
  EXPECT_GT(rejected, kMutations / 2);  // most damage is caught
  RecordProperty("decoded", decoded);
}

}  // namespace
}  // namespace pgolf
