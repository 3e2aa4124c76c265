// Tests for artifact/compress: round trips per codec, container signatures,
// and clean errors for corrupt, truncated, padded or mis-sized input.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "artifact/compress.h"
#include "common/error.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

const std::vector<Codec> kAllCodecs = {Codec::kNone, Codec::kZlib, Codec::kZstd, Codec::kLzma};
const std::vector<Codec> kRealCodecs = {Codec::kZlib, Codec::kZstd, Codec::kLzma};

// ~200 KB that compresses somewhat: repeated text with random bytes mixed in.
std::string sample_data() {
  std::mt19937 rng(7);
  std::string data;
  while (data.size() < 200'000) {
    data += "the quick brown fox jumps over the lazy dog ";
    for (int i = 0; i < 16; ++i) data += static_cast<char>(rng() % 8);
  }
  return data;
}

std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(rng());
  return out;
}

TEST(CompressTest, NamesAndLevels) {
  for (const Codec codec : kAllCodecs) EXPECT_EQ(parse_codec(codec_name(codec)), codec);
  EXPECT_PGOLF_ERROR(parse_codec("gzip"), "codec: 'gzip' is not one of none | zlib | zstd | lzma");
  EXPECT_EQ(default_level(Codec::kZlib), 9);
  EXPECT_EQ(default_level(Codec::kZstd), 22);
  EXPECT_EQ(default_level(Codec::kLzma), 9);
  EXPECT_PGOLF_ERROR(compress("x", Codec::kZlib, 10), "zlib: level 10");
  EXPECT_PGOLF_ERROR(compress("x", Codec::kLzma, -1), "lzma: preset -1");
  EXPECT_PGOLF_ERROR(compress("x", Codec::kZstd, 99), "zstd: level 99");
}

TEST(CompressTest, RoundTripEachCodec) {
  const std::string data = sample_data();
  for (const Codec codec : kAllCodecs) {
    SCOPED_TRACE(std::string(codec_name(codec)));
    const std::string packed = compress(data, codec);
    if (codec != Codec::kNone) {
      EXPECT_LT(packed.size(), data.size());
    }
    EXPECT_EQ(decompress(packed, codec, data.size()), data);
    // Empty input, and a fast level.
    EXPECT_EQ(decompress(compress("", codec), codec, 0), "");
    EXPECT_EQ(decompress(compress(data, codec, 1), codec, data.size()), data);
  }
}

TEST(CompressTest, ContainerSignatures) {
  const std::string data = sample_data();
  EXPECT_EQ(compress(data, Codec::kZlib).substr(0, 2), "\x78\xda");  // zlib, max compression
  EXPECT_EQ(compress(data, Codec::kZstd).substr(0, 4), "\x28\xb5\x2f\xfd");
  EXPECT_EQ(compress(data, Codec::kLzma).substr(0, 6), std::string("\xfd"
                                                                   "7zXZ\0",
                                                                   6));
}

TEST(CompressTest, WrongExpectedSizeErrors) {
  const std::string data = sample_data();
  for (const Codec codec : kAllCodecs) {
    SCOPED_TRACE(std::string(codec_name(codec)));
    const std::string packed = compress(data, codec);
    EXPECT_PGOLF_ERROR(decompress(packed, codec, data.size() + 1), "expected");
    EXPECT_PGOLF_ERROR(decompress(packed, codec, data.size() - 1), "expected");
    EXPECT_PGOLF_ERROR(decompress(packed, codec, 0), "expected");
    // A forged huge size is refused by the data, not by a huge allocation.
    EXPECT_PGOLF_ERROR(decompress(packed, codec, uint64_t{1} << 50), "expected");
    EXPECT_PGOLF_ERROR(decompress(packed, codec, UINT64_MAX), "expected");
  }
}

TEST(CompressTest, TruncatedOrPaddedDataErrors) {
  const std::string data = sample_data();
  for (const Codec codec : kRealCodecs) {
    SCOPED_TRACE(std::string(codec_name(codec)));
    const std::string packed = compress(data, codec);
    for (const size_t keep :
         {size_t{0}, size_t{1}, size_t{5}, packed.size() / 2, packed.size() - 1}) {
      EXPECT_THROW(decompress(packed.substr(0, keep), codec, data.size()), Error) << keep;
    }
    EXPECT_PGOLF_ERROR(decompress(packed.substr(0, packed.size() / 2), codec, data.size()),
                       "truncated");
    EXPECT_PGOLF_ERROR(decompress(packed + "x", codec, data.size()), "trailing");
  }
}

TEST(CompressTest, CorruptDataErrors) {
  const std::string data = sample_data();
  for (const Codec codec : kRealCodecs) {
    SCOPED_TRACE(std::string(codec_name(codec)));
    const std::string packed = compress(data, codec);
    std::string bad_magic = packed;
    bad_magic[0] ^= 0x5a;
    EXPECT_THROW(decompress(bad_magic, codec, data.size()), Error);
    EXPECT_THROW(decompress(random_bytes(4096, 1), codec, data.size()), Error);
    EXPECT_THROW(decompress(random_bytes(3, 2), codec, 3), Error);
  }
  // zlib (Adler-32) and xz (CRC-64) check their content; a flip anywhere is
  // caught. (zstd frames carry no checksum: the artifact's own CRCs cover it.)
  for (const Codec codec : {Codec::kZlib, Codec::kLzma}) {
    SCOPED_TRACE(std::string(codec_name(codec)));
    const std::string packed = compress(data, codec);
    for (const size_t pos : {packed.size() / 3, packed.size() / 2, packed.size() - 20}) {
      std::string bad = packed;
      bad[pos] ^= 0x01;
      EXPECT_THROW(decompress(bad, codec, data.size()), Error) << pos;
    }
  }
}

TEST(CompressTest, SmallestPicksTheMinimum) {
  const std::string data = sample_data();
  const auto [codec, packed] = compress_smallest(data);
  size_t best = SIZE_MAX;
  for (const Codec c : kRealCodecs) best = std::min(best, compress(data, c).size());
  EXPECT_EQ(packed.size(), best);
  EXPECT_NE(codec, Codec::kNone);
  EXPECT_EQ(decompress(packed, codec, data.size()), data);
}

TEST(CompressTest, Crc32KnownValue) {
  EXPECT_EQ(crc32_of("123456789"), 0xCBF43926u);
  EXPECT_EQ(crc32_of(""), 0u);
}

}  // namespace
}  // namespace pgolf
