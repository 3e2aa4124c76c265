// TokenStream and DistributedTokenLoader against the reference's semantics,
// on synthetic shards whose token values equal their stream positions.
#include <gtest/gtest.h>

#include <numeric>

#include "common/error.h"
#include "data/shard.h"
#include "data/token_stream.h"
#include "tests/data/position_shards.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

using testing::ScratchDir;
using testing::write_position_shards;

std::vector<uint16_t> range(int begin, int end) {
  std::vector<uint16_t> out(static_cast<size_t>(end - begin));
  std::iota(out.begin(), out.end(), static_cast<uint16_t>(begin));
  return out;
}

std::vector<uint16_t> concat(std::vector<uint16_t> a, const std::vector<uint16_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

torch::Tensor arange_2d(int64_t begin, int64_t rows, int64_t cols) {
  return torch::arange(begin, begin + rows * cols, torch::kInt64).view({rows, cols});
}

TEST(TokenStream, ConcatenatesAcrossShards) {
  ScratchDir dir;
  TokenStream stream(write_position_shards(dir, {5, 3, 7}), 1024);
  EXPECT_EQ(stream.files().size(), 3u);
  EXPECT_EQ(stream.take(4), range(0, 4));
  EXPECT_EQ(stream.take(6), range(4, 10));  // crosses shard 0 → 1 → 2
  EXPECT_EQ(stream.take(5), range(10, 15));
  EXPECT_EQ(stream.take(0), std::vector<uint16_t>{});
}

TEST(TokenStream, WrapsToFirstShard) {
  ScratchDir dir;
  TokenStream stream(write_position_shards(dir, {5, 3, 7}), 1024);
  EXPECT_EQ(stream.take(20), concat(range(0, 15), range(0, 5)));
  EXPECT_EQ(stream.take(12), concat(range(5, 15), range(0, 2)));
}

TEST(TokenStream, SkipsEmptyShards) {
  ScratchDir dir;
  TokenStream stream(write_position_shards(dir, {3, 0, 2}), 1024);
  EXPECT_EQ(stream.take(7), concat(range(0, 5), range(0, 2)));
}

TEST(TokenStream, AllShardsEmptyIsAnError) {
  ScratchDir dir;
  TokenStream stream(write_position_shards(dir, {0, 0}), 1024);
  EXPECT_PGOLF_ERROR(stream.take(1), "training shards hold no tokens");
}

TEST(TokenStream, PositionAndSeek) {
  ScratchDir dir;
  const std::string glob = write_position_shards(dir, {5, 3, 7});
  TokenStream stream(glob, 1024);
  EXPECT_EQ(stream.position(), (TokenStream::Position{0, 0}));
  stream.take(5);
  // Like the reference, the stream moves to the next shard only when it needs a token.
  EXPECT_EQ(stream.position(), (TokenStream::Position{0, 5}));
  stream.take(2);
  const TokenStream::Position saved = stream.position();
  EXPECT_EQ(saved, (TokenStream::Position{1, 2}));
  const auto expected = stream.take(9);
  EXPECT_EQ(expected, concat(range(7, 15), range(0, 1)));

  TokenStream resumed(glob, 1024);
  resumed.seek(saved);
  EXPECT_EQ(resumed.take(9), expected);
  EXPECT_PGOLF_ERROR(resumed.seek({3, 0}), "at file 3: there are 3 training shards");
  EXPECT_PGOLF_ERROR(resumed.seek({1, 4}), "at offset 4 of");
}

TEST(TokenStream, EmptyGlobAndBadIds) {
  ScratchDir dir;
  EXPECT_PGOLF_ERROR(TokenStream((dir / "none_*.bin").string(), 1024), "(training shards)");
  const std::string glob = write_position_shards(dir, {5, 3});
  TokenStream stream(glob, 6);
  EXPECT_EQ(stream.take(5), range(0, 5));
  EXPECT_PGOLF_ERROR(stream.take(1), "token id 6 at position 1 is >= vocab size 6");
}

TEST(TokenLoader, RanksTakeTheirSpans) {
  ScratchDir dir;
  const std::string glob = write_position_shards(dir, {100, 100});
  // G = 16, T = 4, W = 2, A = 1: local = 8 tokens, span = 9, one call reads 18 tokens.
  for (int64_t rank = 0; rank < 2; ++rank) {
    DistributedTokenLoader loader(glob, 1024, rank, 2);
    for (int64_t call = 0; call < 3; ++call) {
      const TokenBatch batch = loader.next_batch(16, 4, 1);
      const int64_t start = call * 18 + rank * 9;
      EXPECT_EQ(batch.inputs.dtype(), torch::kInt64);
      EXPECT_EQ(batch.inputs.sizes(), (std::vector<int64_t>{2, 4}));
      EXPECT_TRUE(torch::equal(batch.inputs, arange_2d(start, 2, 4))) << "rank " << rank;
      EXPECT_TRUE(torch::equal(batch.targets, arange_2d(start + 1, 2, 4))) << "rank " << rank;
    }
    EXPECT_EQ(loader.position(), (TokenStream::Position{0, 54}));
  }
}

TEST(TokenLoader, RankEqualsMicroStep) {
  // (W, A) = (2, 1) and (1, 2): rank i on two processes sees what micro-step i sees on one.
  ScratchDir dir;
  const std::string glob = write_position_shards(dir, {30, 30});
  DistributedTokenLoader rank0(glob, 1024, 0, 2);
  DistributedTokenLoader rank1(glob, 1024, 1, 2);
  DistributedTokenLoader single(glob, 1024, 0, 1);
  for (int step = 0; step < 5; ++step) {  // wraps around the 60-token stream
    const TokenBatch r0 = rank0.next_batch(24, 4, 1);
    const TokenBatch r1 = rank1.next_batch(24, 4, 1);
    const TokenBatch m0 = single.next_batch(24, 4, 2);
    const TokenBatch m1 = single.next_batch(24, 4, 2);
    EXPECT_TRUE(torch::equal(r0.inputs, m0.inputs)) << "step " << step;
    EXPECT_TRUE(torch::equal(r0.targets, m0.targets)) << "step " << step;
    EXPECT_TRUE(torch::equal(r1.inputs, m1.inputs)) << "step " << step;
    EXPECT_TRUE(torch::equal(r1.targets, m1.targets)) << "step " << step;
  }
  EXPECT_EQ(rank0.position(), single.position());
}

TEST(TokenLoader, SeekResumes) {
  ScratchDir dir;
  const std::string glob = write_position_shards(dir, {50});
  DistributedTokenLoader a(glob, 1024, 0, 1);
  a.next_batch(8, 4, 1);
  const auto saved = a.position();
  const TokenBatch expected = a.next_batch(8, 4, 1);
  DistributedTokenLoader b(glob, 1024, 0, 1);
  b.seek(saved);
  EXPECT_TRUE(torch::equal(b.next_batch(8, 4, 1).inputs, expected.inputs));
}

TEST(TokenLoader, RejectsBadGeometry) {
  ScratchDir dir;
  const std::string glob = write_position_shards(dir, {50});
  DistributedTokenLoader loader(glob, 1024, 0, 2);
  EXPECT_PGOLF_ERROR(loader.next_batch(20, 4, 1),
                     "TRAIN_BATCH_TOKENS=20 / (world_size 2 x grad_accum_steps 1) = 10 tokens per "
                     "micro-batch, which is not a positive multiple of TRAIN_SEQ_LEN=4");
  EXPECT_PGOLF_ERROR(loader.next_batch(1, 1, 1), "= 0 tokens per micro-batch");
  EXPECT_PGOLF_ERROR(loader.next_batch(8, 0, 1), "must be positive");
  EXPECT_PGOLF_ERROR(DistributedTokenLoader(glob, 1024, 2, 2),
                     "rank 2 is not in [0, world_size=2)");
}

// #1855's document packing: each shard is read from its first BOS (id 1); a
// step that does not fit in the rest of the shard starts the next shard; each
// rank gets one row.
TEST(DocumentLoader, StartsAtTheFirstBosAndSkipsShardTails) {
  ScratchDir dir;
  std::vector<uint16_t> a = range(10, 40), b = range(50, 80);
  a[4] = 1;  // shard 0's first document starts at 4
  b[2] = 1;
  write_shard(dir / "train_000000.bin", a);
  write_shard(dir / "train_000001.bin", b);
  const std::string glob = (dir / "train_*.bin").string();
  // 2 ranks x (5 + 1) = 12 tokens per call.
  DistributedTokenLoader r0(glob, 1024, 0, 2, /*pack_documents=*/true);
  DistributedTokenLoader r1(glob, 1024, 1, 2, /*pack_documents=*/true);
  TokenBatch x0 = r0.next_batch(10, 4, 1), x1 = r1.next_batch(10, 4, 1);
  EXPECT_EQ(x0.inputs.sizes(), (std::vector<int64_t>{1, 5}));
  EXPECT_EQ(x0.inputs[0][0].item<int64_t>(), 1);  // the BOS at offset 4
  EXPECT_EQ(x0.targets[0][4].item<int64_t>(), a[9]);
  EXPECT_EQ(x1.inputs[0][0].item<int64_t>(), a[10]);
  // Offsets 16..27 fit in shard 0 (30 tokens); the third call needs 28..39: next shard.
  r0.next_batch(10, 4, 1);
  x0 = r0.next_batch(10, 4, 1);
  EXPECT_EQ(x0.inputs[0][0].item<int64_t>(), 1);  // shard 1's first BOS, at 2
  EXPECT_EQ(r0.position(), (TokenStream::Position{1, 14}));
  // After the last shard: back to shard 0's first document.
  r0.next_batch(10, 4, 1);
  x0 = r0.next_batch(10, 4, 1);
  EXPECT_EQ(x0.inputs[0][0].item<int64_t>(), 1);
  EXPECT_EQ(r0.position(), (TokenStream::Position{0, 16}));
}

TEST(DocumentLoader, ShardsWithoutDocumentsOrTooShortAreOneClearError) {
  ScratchDir dir;
  write_shard(dir / "train_000000.bin", range(10, 40));
  DistributedTokenLoader no_bos((dir / "train_*.bin").string(), 1024, 0, 1, true);
  EXPECT_PGOLF_ERROR(no_bos.next_batch(4, 4, 1), "holds no BOS token (id 1)");
  ScratchDir short_dir;
  std::vector<uint16_t> docs = range(10, 20);
  docs[0] = 1;
  write_shard(short_dir / "train_000000.bin", docs);
  DistributedTokenLoader too_short((short_dir / "train_*.bin").string(), 1024, 0, 1, true);
  EXPECT_PGOLF_ERROR(too_short.next_batch(64, 4, 1), "no training shard holds a step of 65 tokens");
}

}  // namespace
}  // namespace pgolf
