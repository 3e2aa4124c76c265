// Shard format: round trips, every kind of damaged file, validation trimming,
// and the shared challenge shards.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <numeric>

#include "common/error.h"
#include "common/fs.h"
#include "data/shard.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

using testing::ScratchDir;
using testing::shared_dir;

std::vector<uint16_t> iota_tokens(int64_t n, uint16_t start = 0) {
  std::vector<uint16_t> tokens(static_cast<size_t>(n));
  std::iota(tokens.begin(), tokens.end(), start);
  return tokens;
}

// Overwrites the int32 header word `index` of a shard file.
void patch_header(const std::filesystem::path& file, int index, int32_t value) {
  std::string bytes = read_file(file);
  std::memcpy(bytes.data() + 4 * index, &value, 4);
  write_file_atomic(file, bytes);
}

TEST(Shard, RoundTrip) {
  ScratchDir dir;
  const std::vector<uint16_t> tokens = {1, 0, 65535, 17, 1023};
  write_shard(dir / "a.bin", tokens);
  EXPECT_EQ(std::filesystem::file_size(dir / "a.bin"), 1024u + 2 * tokens.size());
  EXPECT_EQ(read_shard(dir / "a.bin", 0), tokens);
  const std::string bytes = read_file(dir / "a.bin");
  int32_t header[3];
  std::memcpy(header, bytes.data(), sizeof header);
  EXPECT_EQ(header[0], 20240520);
  EXPECT_EQ(header[1], 1);
  EXPECT_EQ(header[2], 5);
  EXPECT_TRUE(std::all_of(bytes.begin() + 12, bytes.begin() + 1024, [](char c) { return c == 0; }));
}

TEST(Shard, EmptyShardIsAllowed) {
  ScratchDir dir;
  write_shard(dir / "empty.bin", {});
  EXPECT_TRUE(read_shard(dir / "empty.bin", 1024).empty());
}

TEST(Shard, MissingFile) {
  ScratchDir dir;
  EXPECT_PGOLF_ERROR(read_shard(dir / "nope.bin", 0), "nope.bin: cannot read");
}

TEST(Shard, TruncatedHeader) {
  ScratchDir dir;
  write_file_atomic(dir / "short.bin", std::string(100, '\0'));
  EXPECT_PGOLF_ERROR(read_shard(dir / "short.bin", 0), "short.bin: truncated header");
}

TEST(Shard, BadMagic) {
  ScratchDir dir;
  write_shard(dir / "m.bin", iota_tokens(3));
  patch_header(dir / "m.bin", 0, 12345);
  EXPECT_PGOLF_ERROR(read_shard(dir / "m.bin", 0), "m.bin: bad magic 12345 (expected 20240520)");
}

TEST(Shard, BadVersion) {
  ScratchDir dir;
  write_shard(dir / "v.bin", iota_tokens(3));
  patch_header(dir / "v.bin", 1, 2);
  EXPECT_PGOLF_ERROR(read_shard(dir / "v.bin", 0), "v.bin: unsupported version 2 (expected 1)");
}

TEST(Shard, SizeMismatchFileLonger) {
  ScratchDir dir;
  write_shard(dir / "s.bin", iota_tokens(3));
  std::ofstream(dir / "s.bin", std::ios::binary | std::ios::app) << "xy";
  EXPECT_PGOLF_ERROR(
      read_shard(dir / "s.bin", 0),
      "s.bin: size mismatch: header says 3 tokens = 1030 bytes, file has 1032 bytes");
}

TEST(Shard, SizeMismatchFileShorter) {
  ScratchDir dir;
  write_shard(dir / "s.bin", iota_tokens(3));
  patch_header(dir / "s.bin", 2, 4);
  EXPECT_PGOLF_ERROR(
      read_shard(dir / "s.bin", 0),
      "s.bin: size mismatch: header says 4 tokens = 1032 bytes, file has 1030 bytes");
}

TEST(Shard, TokenIdOutsideVocab) {
  ScratchDir dir;
  write_shard(dir / "ids.bin", std::vector<uint16_t>{1, 2, 1024, 5});
  EXPECT_PGOLF_ERROR(read_shard(dir / "ids.bin", 1024),
                     "ids.bin: token id 1024 at position 2 is >= vocab size 1024");
  EXPECT_EQ(read_shard(dir / "ids.bin", 1025).size(), 4u);
  EXPECT_EQ(read_shard(dir / "ids.bin", 0).size(), 4u);  // check skipped
}

TEST(Shard, EmptyGlob) {
  ScratchDir dir;
  const std::string glob = (dir / "fineweb_val_*.bin").string();
  EXPECT_PGOLF_ERROR(shard_files(glob, "validation shards"),
                     "no files match " + glob + " (validation shards)");
}

TEST(Shard, FilesAreSorted) {
  ScratchDir dir;
  for (const char* name : {"x_000002.bin", "x_000000.bin", "x_000001.bin"}) {
    write_shard(dir / name, iota_tokens(1));
  }
  const auto files = shard_files((dir / "x_*.bin").string(), "test");
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(files[0].filename(), "x_000000.bin");
  EXPECT_EQ(files[2].filename(), "x_000002.bin");
}

TEST(Shard, ValidationTokensConcatenateAndTrim) {
  ScratchDir dir;
  write_shard(dir / "fineweb_val_000000.bin", iota_tokens(10));
  write_shard(dir / "fineweb_val_000001.bin", iota_tokens(7, 10));
  const std::string glob = (dir / "fineweb_val_*.bin").string();
  // 17 tokens: seq 4 → 16 targets + 1; seq 5 → 15 targets + 1.
  for (const auto& [seq_len, expected] : {std::pair{4, 17}, {5, 16}, {16, 17}, {8, 17}, {6, 13}}) {
    const torch::Tensor v = load_validation_tokens(glob, seq_len, 1024);
    EXPECT_EQ(v.dtype(), torch::kInt64);
    ASSERT_EQ(v.numel(), expected) << "seq_len " << seq_len;
    EXPECT_TRUE(torch::equal(v, torch::arange(expected, torch::kInt64)));
  }
  EXPECT_PGOLF_ERROR(load_validation_tokens(glob, 17, 1024), "too few for one sequence of 17");
  EXPECT_PGOLF_ERROR(load_validation_tokens(glob, 4, 16), "token id 16 at position 6");
}

TEST(Shard, SharedTrainShard) {
  PGOLF_REQUIRE_SHARED();
  const auto tokens = read_shard(shared_dir() / "data/shards/fineweb_train_000000.bin", 1024);
  EXPECT_EQ(tokens.size(), 6'353'133u);
  EXPECT_EQ(tokens.front(), 1);                                            // BOS
  EXPECT_EQ(std::count(tokens.begin(), tokens.end(), uint16_t{1}), 2698);  // one BOS per doc
  EXPECT_EQ(std::count(tokens.begin(), tokens.end(), uint16_t{2}), 0);     // no EOS
}

TEST(Shard, SharedValShardRewritesByteIdentical) {
  PGOLF_REQUIRE_SHARED();
  ScratchDir dir;
  const auto original = shared_dir() / "data/shards/fineweb_val_000000.bin";
  write_shard(dir / "copy.bin", read_shard(original, 1024));
  EXPECT_EQ(read_file(dir / "copy.bin"), read_file(original));
  const torch::Tensor v =
      load_validation_tokens((shared_dir() / "data/shards/fineweb_val_*.bin").string(), 1024, 1024);
  EXPECT_EQ(v.numel(), 720 * 1024 + 1);  // 737,938 tokens → 720 full sequences
}

}  // namespace
}  // namespace pgolf
