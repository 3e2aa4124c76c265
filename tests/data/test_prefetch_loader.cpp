// PrefetchingTokenLoader hands out exactly the plain loader's batches and
// positions, whatever the shard boundaries, seeks and errors.
#include <gtest/gtest.h>

#include "common/error.h"
#include "data/prefetch_loader.h"
#include "data/shard.h"
#include "tests/data/position_shards.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

using testing::ScratchDir;
using testing::write_position_shards;

std::unique_ptr<DistributedTokenLoader> plain(const std::string& glob, int64_t rank,
                                              int64_t world) {
  return std::make_unique<DistributedTokenLoader>(glob, 1024, rank, world);
}

void expect_same(const TokenBatch& a, const TokenBatch& b, int call) {
  EXPECT_TRUE(torch::equal(a.inputs, b.inputs)) << "call " << call;
  EXPECT_TRUE(torch::equal(a.targets, b.targets)) << "call " << call;
}

TEST(PrefetchingTokenLoader, SameBatchesAndPositionsAsThePlainLoader) {
  ScratchDir dir;
  // Odd shard sizes: batches straddle shard boundaries and the wrap-around.
  const std::string glob = write_position_shards(dir, {37, 50, 23});
  const PrefetchingTokenLoader::Shape shape{16, 2, 2};  // W = 2, A = 2: 4 tokens a micro-batch
  for (int64_t rank = 0; rank < 2; ++rank) {
    auto reference = plain(glob, rank, 2);
    PrefetchingTokenLoader prefetching(plain(glob, rank, 2), shape, /*pin_memory=*/false);
    EXPECT_EQ(prefetching.position(), reference->position());
    for (int call = 0; call < 40; ++call) {
      const TokenBatch expected = reference->next_batch(16, 2, 2);
      expect_same(prefetching.next_batch(), expected, call);
      EXPECT_EQ(prefetching.position(), reference->position()) << "call " << call;
    }
  }
}

TEST(PrefetchingTokenLoader, SeekDropsThePrefetchedBatch) {
  ScratchDir dir;
  const std::string glob = write_position_shards(dir, {30, 41});
  const PrefetchingTokenLoader::Shape shape{8, 4, 1};
  PrefetchingTokenLoader loader(plain(glob, 0, 1), shape, false);
  loader.next_batch();
  loader.next_batch();
  const auto saved = loader.position();
  const TokenBatch first = loader.next_batch();
  const TokenBatch second = loader.next_batch();
  loader.seek(saved);
  EXPECT_EQ(loader.position(), saved);
  expect_same(loader.next_batch(), first, 0);
  expect_same(loader.next_batch(), second, 1);

  // A fresh loader resumed at the checkpointed position reads the same tokens.
  PrefetchingTokenLoader resumed(plain(glob, 0, 1), shape, false);
  resumed.seek(saved);
  expect_same(resumed.next_batch(), first, 2);
  EXPECT_PGOLF_ERROR(resumed.seek({5, 0}), "cannot resume the token stream at file 5");
}

TEST(PrefetchingTokenLoader, ErrorsSurfaceAtTheBatchThatMeetsThem) {
  ScratchDir dir;
  write_shard(dir / "train_000000.bin", std::vector<uint16_t>(20, 7));
  write_shard(dir / "train_000001.bin", std::vector<uint16_t>{1, 2, 2000});  // id >= vocab
  const std::string glob = (dir / "train_*.bin").string();
  // 8 + 1 tokens a call: the third call reaches the malformed second shard,
  // while the second batch is handed out.
  PrefetchingTokenLoader loader(plain(glob, 0, 1), {8, 4, 1}, false);
  loader.next_batch();
  loader.next_batch();
  EXPECT_PGOLF_ERROR(loader.next_batch(), "token id 2000 at position 2 is >= vocab size 1024");

  PrefetchingTokenLoader bad_shape(plain(glob, 0, 1), {10, 4, 1}, false);
  EXPECT_PGOLF_ERROR(bad_shape.next_batch(), "not a positive multiple of TRAIN_SEQ_LEN=4");
}

}  // namespace
}  // namespace pgolf
