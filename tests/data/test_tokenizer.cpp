// The official sp1024 tokenizer and the byte-count tables, checked exactly
// against the reference's golden values (shared/golden/baseline/sp1024_luts.json).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/fs.h"
#include "data/shard.h"
#include "data/tokenizer.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

using testing::ScratchDir;
using testing::shared_dir;

using testing::official_tokenizer;

nlohmann::json golden_luts() {
  return nlohmann::json::parse(read_file(shared_dir() / "golden/baseline/sp1024_luts.json"));
}

nlohmann::json shard_stats() {
  return nlohmann::json::parse(read_file(shared_dir() / "data/shards/stats.json"));
}

template <typename T>
std::vector<T> to_vector(const torch::Tensor& t) {
  const torch::Tensor c = t.contiguous().cpu();
  return std::vector<T>(c.data_ptr<T>(), c.data_ptr<T>() + c.numel());
}

torch::Tensor ids_tensor(const std::vector<int>& ids) {
  std::vector<int64_t> wide(ids.begin(), ids.end());
  return torch::tensor(wide, torch::kInt64);
}

// Σ target_bytes over a whole token stream (targets 1..n-1).
int64_t stream_bytes(const ByteLuts& luts, const torch::Tensor& stream) {
  const int64_t n = stream.numel();
  return target_bytes(luts, stream.slice(0, 0, n - 1), stream.slice(0, 1, n)).sum().item<int64_t>();
}

torch::Tensor shard_tensor(const std::filesystem::path& file) {
  const auto tokens = read_shard(file, 1024);
  return torch::tensor(std::vector<int64_t>(tokens.begin(), tokens.end()), torch::kInt64);
}

TEST(Tokenizer, LoadsOfficialModel) {
  PGOLF_REQUIRE_SHARED();
  const Tokenizer tok = Tokenizer::load(official_tokenizer());
  EXPECT_EQ(tok.vocab_size(), 1024);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  for (int id = 0; id < 4; ++id) EXPECT_TRUE(tok.is_control(id) || tok.is_unknown(id)) << id;
  for (int id = 4; id < 260; ++id) EXPECT_TRUE(tok.is_byte(id)) << id;
  EXPECT_EQ(tok.piece(4), "<0x00>");
  EXPECT_EQ(tok.piece(939), "\xE2\x96\x81");  // the bare "▁"
  check_vocab(tok, 1024);
  EXPECT_PGOLF_ERROR(check_vocab(tok, 512),
                     "VOCAB_SIZE=512 does not match tokenizer vocab_size=1024");
}

TEST(Tokenizer, LoadErrors) {
  ScratchDir dir;
  EXPECT_PGOLF_ERROR(Tokenizer::load(dir / "missing.model"), "missing.model: file not found");
  write_file_atomic(dir / "junk.model", "this is not a protobuf");
  EXPECT_PGOLF_ERROR(Tokenizer::load(dir / "junk.model"), "junk.model: not a SentencePiece model");
}

TEST(ByteLuts, EqualGoldenTables) {
  PGOLF_REQUIRE_SHARED();
  const nlohmann::json golden = golden_luts();
  const ByteLuts luts = build_byte_luts(Tokenizer::load(official_tokenizer()), 1024);
  EXPECT_EQ(luts.base_bytes.dtype(), torch::kInt16);
  EXPECT_EQ(luts.has_leading_space.dtype(), torch::kBool);
  EXPECT_EQ(to_vector<int16_t>(luts.base_bytes), golden["base_bytes"].get<std::vector<int16_t>>());
  EXPECT_EQ(to_vector<bool>(luts.has_leading_space),
            golden["has_leading_space"].get<std::vector<bool>>());
  EXPECT_EQ(to_vector<bool>(luts.is_boundary),
            golden["is_boundary_token"].get<std::vector<bool>>());
  EXPECT_EQ(luts.has_leading_space.sum().item<int64_t>(), 325);
}

TEST(ByteLuts, LargerVocabPadsWithBoundaries) {
  PGOLF_REQUIRE_SHARED();
  const ByteLuts luts = build_byte_luts(Tokenizer::load(official_tokenizer()), 1030);
  ASSERT_EQ(luts.base_bytes.numel(), 1030);
  EXPECT_TRUE(luts.is_boundary.slice(0, 1024).all().item<bool>());
  EXPECT_EQ(luts.base_bytes.slice(0, 1024).abs().sum().item<int64_t>(), 0);
  EXPECT_FALSE(luts.has_leading_space.slice(0, 1024).any().item<bool>());
}

TEST(ByteLuts, FiveSentences) {
  PGOLF_REQUIRE_SHARED();
  const nlohmann::json golden = golden_luts();
  const Tokenizer tok = Tokenizer::load(official_tokenizer());
  const ByteLuts luts = build_byte_luts(tok, 1024);
  ASSERT_EQ(golden["sentences"].size(), 5u);
  for (const auto& s : golden["sentences"]) {
    const std::string text = s["text"];
    const std::vector<int> ids = tok.encode(text);
    EXPECT_EQ(ids, s["token_ids"].get<std::vector<int>>()) << text;
    EXPECT_EQ(tok.decode(ids), s["decoded_text"].get<std::string>()) << text;
    std::vector<int> stream = {tok.bos_id()};
    stream.insert(stream.end(), ids.begin(), ids.end());
    const torch::Tensor t = ids_tensor(stream);
    const torch::Tensor per_token = target_bytes(luts, t.slice(0, 0, -1), t.slice(0, 1));
    EXPECT_EQ(to_vector<int64_t>(per_token), s["per_token_bytes"].get<std::vector<int64_t>>())
        << text;
    EXPECT_EQ(per_token.sum().item<int64_t>(), s["formula_bytes"].get<int64_t>()) << text;
  }
}

TEST(ByteLuts, TargetBytesKeepsShapeAndChecksIt) {
  PGOLF_REQUIRE_SHARED();
  const ByteLuts luts = build_byte_luts(Tokenizer::load(official_tokenizer()), 1024);
  // 267 = "▁the" (4 bytes with its space); after BOS (a boundary) the space is not counted.
  const torch::Tensor prev = torch::tensor({1, 960, 1, 960}, torch::kInt64).view({2, 2});
  const torch::Tensor target = torch::tensor({267, 267, 4, 939}, torch::kInt64).view({2, 2});
  const torch::Tensor bytes = target_bytes(luts, prev, target);
  EXPECT_EQ(bytes.sizes(), target.sizes());
  EXPECT_EQ(bytes.dtype(), torch::kInt64);
  EXPECT_EQ(to_vector<int64_t>(bytes), (std::vector<int64_t>{3, 4, 1, 1}));
  EXPECT_PGOLF_ERROR(target_bytes(luts, prev.view({4}), target), "differ in shape");
}

TEST(ByteLuts, WorkOnCuda) {
  PGOLF_REQUIRE_SHARED();
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const ByteLuts luts = build_byte_luts(Tokenizer::load(official_tokenizer()), 1024);
  const torch::Tensor stream = shard_tensor(shared_dir() / "data/shards/fineweb_val_000000.bin");
  EXPECT_EQ(stream_bytes(luts.to(torch::kCUDA), stream.to(torch::kCUDA)),
            stream_bytes(luts, stream));
}

TEST(ByteLuts, SharedShardTotals) {
  PGOLF_REQUIRE_SHARED();
  const nlohmann::json stats = shard_stats();
  const ByteLuts luts = build_byte_luts(Tokenizer::load(official_tokenizer()), 1024);
  for (const char* split : {"val", "train"}) {
    const torch::Tensor stream =
        shard_tensor(shared_dir() / fmt::format("data/shards/fineweb_{}_000000.bin", split));
    const auto& expected = stats["splits"][split];
    EXPECT_EQ(stream.numel() - 1, expected["eval_target_tokens"].get<int64_t>()) << split;
    EXPECT_EQ(stream_bytes(luts, stream), expected["eval_bytes"].get<int64_t>()) << split;
  }
  EXPECT_EQ(stats["splits"]["val"]["eval_bytes"].get<int64_t>(), 1'769'699);
  EXPECT_EQ(stats["splits"]["val"]["eval_target_tokens"].get<int64_t>(), 737'937);
}

}  // namespace
}  // namespace pgolf
