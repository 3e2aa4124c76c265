// Tests for artifact/compress: round trips per codec, container signatures,
// clean errors for corrupt, truncated, padded or mis-sized input, and brotli's
// bytes against Python's brotli module (skipped where it is absent).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "artifact/compress.h"
#include "common/error.h"
#include "common/fs.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

const std::vector<Codec> kAllCodecs = {Codec::kNone, Codec::kZlib, Codec::kZstd, Codec::kLzma,
                                       Codec::kBrotli};
const std::vector<Codec> kRealCodecs = {Codec::kZlib, Codec::kZstd, Codec::kLzma, Codec::kBrotli};

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
  EXPECT_PGOLF_ERROR(parse_codec("gzip"),
                     "codec: 'gzip' is not one of none | zlib | zstd | lzma | brotli");
  EXPECT_EQ(default_level(Codec::kZlib), 9);
  EXPECT_EQ(default_level(Codec::kZstd), 22);
  EXPECT_EQ(default_level(Codec::kLzma), 9);
  EXPECT_EQ(default_level(Codec::kBrotli), 11);
  EXPECT_PGOLF_ERROR(compress("x", Codec::kZlib, 10), "zlib: level 10");
  EXPECT_PGOLF_ERROR(compress("x", Codec::kLzma, -1), "lzma: preset -1");
  EXPECT_PGOLF_ERROR(compress("x", Codec::kZstd, 99), "zstd: level 99");
  EXPECT_PGOLF_ERROR(compress("x", Codec::kBrotli, 12), "brotli: quality 12");
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
  // caught. (zstd frames and brotli streams carry no checksum: the artifact's
  // own CRCs cover them.)
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

// brotli: one clear pgolf::Error, naming the codec, for each kind of damage.
TEST(CompressTest, BrotliDamageGivesOneClearError) {
  const std::string data = sample_data();
  const std::string packed = compress(data, Codec::kBrotli);
  EXPECT_PGOLF_ERROR(decompress(packed.substr(0, packed.size() - 1), Codec::kBrotli, data.size()),
                     "brotli: compressed data is truncated");
  EXPECT_PGOLF_ERROR(decompress("", Codec::kBrotli, 0), "brotli: compressed data is truncated");
  EXPECT_PGOLF_ERROR(decompress(packed + "x", Codec::kBrotli, data.size()),
                     "brotli: 1 trailing bytes");
  EXPECT_PGOLF_ERROR(decompress(random_bytes(4096, 3), Codec::kBrotli, data.size()), "brotli: ");
  // Every flipped bit of the stream header and a sweep through the body: the
  // result is an error naming brotli or (no checksum) a wrong-but-sized output.
  for (size_t pos = 0; pos < packed.size(); pos += 1 + packed.size() / 97) {
    std::string bad = packed;
    bad[pos] ^= 0x10;
    try {
      const std::string out = decompress(bad, Codec::kBrotli, data.size());
      EXPECT_EQ(out.size(), data.size()) << pos;
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).rfind("brotli: ", 0), 0u) << pos << ": " << e.what();
    }
  }
}

// The bytes equal Python's brotli.compress(raw, quality=11) (the record's call)
// where $PGOLF_PYTHON (or python3) has the brotli module; skipped otherwise.
TEST(CompressTest, BrotliMatchesPythonBrotli) {
  const char* env = std::getenv("PGOLF_PYTHON");
  const std::string python = env != nullptr && *env != '\0' ? env : "python3";
  if (std::system((python + " -c 'import brotli' >/dev/null 2>&1").c_str()) != 0) {
    GTEST_SKIP() << "no " << python << " with the brotli module ($PGOLF_PYTHON)";
  }
  const testing::ScratchDir dir;
  const std::string data = sample_data();
  write_file_atomic(dir.path() / "raw.bin", data);
  const std::string script =
      "import brotli,sys; raw=open(sys.argv[1],'rb').read(); "
      "open(sys.argv[2],'wb').write(brotli.compress(raw, quality=11))";
  const std::string cmd = python + " -c \"" + script + "\" '" + (dir.path() / "raw.bin").string() +
                          "' '" + (dir.path() / "py.br").string() + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const std::string theirs = read_file(dir.path() / "py.br");
  EXPECT_EQ(compress(data, Codec::kBrotli), theirs);
  EXPECT_EQ(decompress(theirs, Codec::kBrotli, data.size()), data);
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
