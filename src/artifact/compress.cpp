// Codec implementations (see compress.h). Decompression is streaming for all
// four libraries so that the output grows only as fast as the data really
// expands, capped at expected_size + 1 bytes: one byte of headroom is how a
// stream that is longer than claimed gets caught.
#include "artifact/compress.h"

#include <brotli/decode.h>
#include <brotli/encode.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <limits>

#include "common/error.h"

namespace pgolf {
namespace {

// zlib counts in 32-bit uInt; feed it at most this much at a time.
constexpr size_t kZlibChunk = size_t{1} << 30;
// A hostile xz header may ask for any dictionary; preset 9 needs ~65 MiB.
constexpr uint64_t kLzmaMemlimit = uint64_t{1} << 30;
constexpr size_t kInitialOutput = size_t{1} << 16;
// brotli's default window (BROTLI_DEFAULT_WINDOW), which the record keeps.
constexpr int kBrotliWindowBits = 22;

// Output buffer for streaming decompression (see the file comment).
class Sink {
 public:
  Sink(uint64_t expected, size_t input_size)
      : expected_(expected),
        limit_(expected == std::numeric_limits<uint64_t>::max() ? expected : expected + 1) {
    const uint64_t guess = std::max<uint64_t>(kInitialOutput, uint64_t{4} * input_size);
    buffer_.resize(static_cast<size_t>(std::min(limit_, guess)));
  }

  // Free space for the decoder's next write; grows the buffer when it is full.
  char* free_begin() {
    if (used_ == buffer_.size()) {
      const uint64_t grown = std::min<uint64_t>(limit_, uint64_t{2} * buffer_.size());
      buffer_.resize(static_cast<size_t>(grown));
    }
    return buffer_.data() + used_;
  }
  size_t free_size() const { return buffer_.size() - used_; }

  // Records n more bytes written; fails once the data exceeds the expected size.
  void commit(size_t n, std::string_view codec) {
    used_ += n;
    PGOLF_CHECK(used_ <= expected_, "{}: data decompresses to more than the expected {} bytes",
                codec, expected_);
  }

  // Final checks; returns the data.
  std::string finish(std::string_view codec, size_t unread_input) {
    PGOLF_CHECK(unread_input == 0, "{}: {} trailing bytes after the compressed stream", codec,
                unread_input);
    PGOLF_CHECK(used_ == expected_, "{}: data decompresses to {} bytes, expected {}", codec, used_,
                expected_);
    buffer_.resize(used_);
    return std::move(buffer_);
  }

 private:
  uint64_t expected_;
  uint64_t limit_;
  std::string buffer_;
  size_t used_ = 0;
};

std::string zlib_compress(std::string_view data, int level) {
  PGOLF_CHECK(level >= 0 && level <= 9, "zlib: level {} is outside 0-9", level);
  std::string out(compressBound(data.size()), '\0');
  uLongf out_size = out.size();
  const int rc = compress2(reinterpret_cast<Bytef*>(out.data()), &out_size,
                           reinterpret_cast<const Bytef*>(data.data()), data.size(), level);
  PGOLF_CHECK(rc == Z_OK, "zlib: compression failed (code {})", rc);
  out.resize(out_size);
  return out;
}

std::string zlib_decompress(std::string_view data, uint64_t expected) {
  z_stream zs{};
  PGOLF_CHECK(inflateInit(&zs) == Z_OK, "zlib: cannot initialise the decoder");
  struct Guard {
    z_stream* s;
    ~Guard() { inflateEnd(s); }
  } guard{&zs};

  Sink sink(expected, data.size());
  size_t fed = 0;
  while (true) {
    if (zs.avail_in == 0 && fed < data.size()) {
      const size_t chunk = std::min(data.size() - fed, kZlibChunk);
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data() + fed));
      zs.avail_in = static_cast<uInt>(chunk);
      fed += chunk;
    }
    zs.next_out = reinterpret_cast<Bytef*>(sink.free_begin());
    const uInt room = static_cast<uInt>(std::min(sink.free_size(), kZlibChunk));
    zs.avail_out = room;
    const int rc = inflate(&zs, Z_NO_FLUSH);
    sink.commit(room - zs.avail_out, "zlib");
    if (rc == Z_STREAM_END) break;
    if (rc == Z_BUF_ERROR && zs.avail_in == 0 && fed == data.size()) {
      fail("zlib: compressed data is truncated");
    }
    PGOLF_CHECK(rc == Z_OK || rc == Z_BUF_ERROR, "zlib: compressed data is corrupt ({})",
                zs.msg != nullptr ? zs.msg : "code " + std::to_string(rc));
  }
  return sink.finish("zlib", zs.avail_in + (data.size() - fed));
}

std::string zstd_compress(std::string_view data, int level) {
  PGOLF_CHECK(level >= ZSTD_minCLevel() && level <= ZSTD_maxCLevel(),
              "zstd: level {} is outside {}-{}", level, ZSTD_minCLevel(), ZSTD_maxCLevel());
  std::string out(ZSTD_compressBound(data.size()), '\0');
  const size_t n = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), level);
  PGOLF_CHECK(!ZSTD_isError(n), "zstd: compression failed ({})", ZSTD_getErrorName(n));
  out.resize(n);
  return out;
}

std::string zstd_decompress(std::string_view data, uint64_t expected) {
  ZSTD_DCtx* ctx = ZSTD_createDCtx();
  PGOLF_CHECK(ctx != nullptr, "zstd: cannot create the decoder");
  struct Guard {
    ZSTD_DCtx* c;
    ~Guard() { ZSTD_freeDCtx(c); }
  } guard{ctx};

  Sink sink(expected, data.size());
  ZSTD_inBuffer in{data.data(), data.size(), 0};
  while (true) {
    ZSTD_outBuffer out{sink.free_begin(), sink.free_size(), 0};
    const size_t rc = ZSTD_decompressStream(ctx, &out, &in);
    PGOLF_CHECK(!ZSTD_isError(rc), "zstd: compressed data is corrupt ({})", ZSTD_getErrorName(rc));
    sink.commit(out.pos, "zstd");
    if (rc == 0) break;  // the frame is complete and flushed
    // Room left over with all input consumed: the decoder is waiting for more.
    PGOLF_CHECK(!(in.pos == in.size && out.pos < out.size), "zstd: compressed data is truncated");
  }
  return sink.finish("zstd", in.size - in.pos);
}

std::string_view lzma_error(lzma_ret rc) {
  switch (rc) {
    case LZMA_FORMAT_ERROR:
      return "not in the xz format";
    case LZMA_OPTIONS_ERROR:
      return "unsupported options";
    case LZMA_DATA_ERROR:
      return "corrupt data";
    case LZMA_MEM_ERROR:
      return "out of memory";
    case LZMA_MEMLIMIT_ERROR:
      return "needs more than 1 GiB of memory";
    case LZMA_BUF_ERROR:
      return "truncated";
    default:
      return "internal error";
  }
}

std::string lzma_compress(std::string_view data, int level) {
  PGOLF_CHECK(level >= 0 && level <= 9, "lzma: preset {} is outside 0-9", level);
  lzma_stream strm = LZMA_STREAM_INIT;
  lzma_ret rc = lzma_easy_encoder(&strm, static_cast<uint32_t>(level), LZMA_CHECK_CRC64);
  PGOLF_CHECK(rc == LZMA_OK, "lzma: cannot initialise the encoder ({})", lzma_error(rc));
  struct Guard {
    lzma_stream* s;
    ~Guard() { lzma_end(s); }
  } guard{&strm};

  std::string out(lzma_stream_buffer_bound(data.size()), '\0');
  strm.next_in = reinterpret_cast<const uint8_t*>(data.data());
  strm.avail_in = data.size();
  size_t used = 0;
  while (true) {
    if (used == out.size()) out.resize(2 * out.size());
    strm.next_out = reinterpret_cast<uint8_t*>(out.data() + used);
    strm.avail_out = out.size() - used;
    const size_t room = strm.avail_out;
    rc = lzma_code(&strm, LZMA_FINISH);
    used += room - strm.avail_out;
    if (rc == LZMA_STREAM_END) break;
    PGOLF_CHECK(rc == LZMA_OK, "lzma: compression failed ({})", lzma_error(rc));
  }
  out.resize(used);
  return out;
}

std::string lzma_decompress(std::string_view data, uint64_t expected) {
  lzma_stream strm = LZMA_STREAM_INIT;
  lzma_ret rc = lzma_stream_decoder(&strm, kLzmaMemlimit, 0);
  PGOLF_CHECK(rc == LZMA_OK, "lzma: cannot initialise the decoder ({})", lzma_error(rc));
  struct Guard {
    lzma_stream* s;
    ~Guard() { lzma_end(s); }
  } guard{&strm};

  Sink sink(expected, data.size());
  strm.next_in = reinterpret_cast<const uint8_t*>(data.data());
  strm.avail_in = data.size();
  while (true) {
    strm.next_out = reinterpret_cast<uint8_t*>(sink.free_begin());
    const size_t room = sink.free_size();
    strm.avail_out = room;
    // LZMA_FINISH: all input is already given; no progress then means truncation.
    rc = lzma_code(&strm, LZMA_FINISH);
    sink.commit(room - strm.avail_out, "lzma");
    if (rc == LZMA_STREAM_END) break;
    PGOLF_CHECK(rc == LZMA_OK, "lzma: compressed data is {}",
                rc == LZMA_BUF_ERROR ? "truncated" : lzma_error(rc));
  }
  return sink.finish("lzma", strm.avail_in);
}

}  // namespace

// One stream through the streaming encoder with all input and FINISH, as
// Python's brotli.compress does (no size hint), so the bytes match it.
std::string brotli_compress(std::string_view data, int level, int window_bits) {
  PGOLF_CHECK(level >= BROTLI_MIN_QUALITY && level <= BROTLI_MAX_QUALITY,
              "brotli: quality {} is outside {}-{}", level, BROTLI_MIN_QUALITY, BROTLI_MAX_QUALITY);
  BrotliEncoderState* enc = BrotliEncoderCreateInstance(nullptr, nullptr, nullptr);
  PGOLF_CHECK(enc != nullptr, "brotli: cannot create the encoder");
  struct Guard {
    BrotliEncoderState* e;
    ~Guard() { BrotliEncoderDestroyInstance(e); }
  } guard{enc};
  PGOLF_CHECK(BrotliEncoderSetParameter(enc, BROTLI_PARAM_MODE, BROTLI_MODE_GENERIC) &&
                  BrotliEncoderSetParameter(enc, BROTLI_PARAM_QUALITY, level) &&
                  BrotliEncoderSetParameter(enc, BROTLI_PARAM_LGWIN, window_bits),
              "brotli: cannot set the encoder parameters");

  std::string out(std::max<size_t>(kInitialOutput, data.size() / 2), '\0');
  size_t used = 0;
  size_t avail_in = data.size();
  const auto* next_in = reinterpret_cast<const uint8_t*>(data.data());
  while (true) {
    if (used == out.size()) out.resize(2 * out.size());
    size_t avail_out = out.size() - used;
    auto* next_out = reinterpret_cast<uint8_t*>(out.data() + used);
    const size_t room = avail_out;
    const bool ok = BrotliEncoderCompressStream(enc, BROTLI_OPERATION_FINISH, &avail_in, &next_in,
                                                &avail_out, &next_out, nullptr);
    PGOLF_CHECK(ok, "brotli: compression failed");
    used += room - avail_out;
    if (BrotliEncoderIsFinished(enc)) break;
  }
  out.resize(used);
  return out;
}

std::string brotli_decompress(std::string_view data, uint64_t expected) {
  // The default decoder accepts only standard windows (at most 16 MiB).
  BrotliDecoderState* dec = BrotliDecoderCreateInstance(nullptr, nullptr, nullptr);
  PGOLF_CHECK(dec != nullptr, "brotli: cannot create the decoder");
  struct Guard {
    BrotliDecoderState* d;
    ~Guard() { BrotliDecoderDestroyInstance(d); }
  } guard{dec};

  Sink sink(expected, data.size());
  size_t avail_in = data.size();
  const auto* next_in = reinterpret_cast<const uint8_t*>(data.data());
  while (true) {
    auto* next_out = reinterpret_cast<uint8_t*>(sink.free_begin());
    const size_t room = sink.free_size();
    size_t avail_out = room;
    const BrotliDecoderResult rc =
        BrotliDecoderDecompressStream(dec, &avail_in, &next_in, &avail_out, &next_out, nullptr);
    sink.commit(room - avail_out, "brotli");
    if (rc == BROTLI_DECODER_RESULT_SUCCESS) break;
    PGOLF_CHECK(rc != BROTLI_DECODER_RESULT_ERROR, "brotli: compressed data is corrupt ({})",
                BrotliDecoderErrorString(BrotliDecoderGetErrorCode(dec)));
    // All input given and the decoder wants more: the stream stops early.
    PGOLF_CHECK(rc != BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT,
                "brotli: compressed data is truncated");
  }
  return sink.finish("brotli", avail_in);
}

int default_level(Codec codec) {
  switch (codec) {
    case Codec::kNone:
      return 0;
    case Codec::kZlib:
      return 9;
    case Codec::kZstd:
      return 22;
    case Codec::kLzma:
      return 9;
    case Codec::kBrotli:
      return BROTLI_MAX_QUALITY;
    case Codec::kPergroup:
      return 9;  // lrzip's
  }
  fail("invalid codec value {}", static_cast<int>(codec));
}

std::string compress(std::string_view data, Codec codec, int level) {
  switch (codec) {
    case Codec::kNone:
      return std::string(data);
    case Codec::kZlib:
      return zlib_compress(data, level);
    case Codec::kZstd:
      return zstd_compress(data, level);
    case Codec::kLzma:
      return lzma_compress(data, level);
    case Codec::kBrotli:
      return brotli_compress(data, level, kBrotliWindowBits);
    case Codec::kPergroup:
      fail("the pergroup codec needs the artifact's tensor table (artifact/pergroup.h)");
  }
  fail("invalid codec value {}", static_cast<int>(codec));
}

std::string compress(std::string_view data, Codec codec) {
  return compress(data, codec, default_level(codec));
}

std::string decompress(std::string_view data, Codec codec, uint64_t expected_size) {
  switch (codec) {
    case Codec::kNone:
      PGOLF_CHECK(data.size() == expected_size, "none: data has {} bytes, expected {}", data.size(),
                  expected_size);
      return std::string(data);
    case Codec::kZlib:
      return zlib_decompress(data, expected_size);
    case Codec::kZstd:
      return zstd_decompress(data, expected_size);
    case Codec::kLzma:
      return lzma_decompress(data, expected_size);
    case Codec::kBrotli:
      return brotli_decompress(data, expected_size);
    case Codec::kPergroup:
      fail("the pergroup codec needs the artifact's tensor table (artifact/pergroup.h)");
  }
  fail("invalid codec value {}", static_cast<int>(codec));
}

std::pair<Codec, std::string> compress_smallest(std::string_view data) {
  std::pair<Codec, std::string> best{Codec::kZlib, compress(data, Codec::kZlib)};
  for (const Codec codec : {Codec::kZstd, Codec::kLzma, Codec::kBrotli}) {
    std::string candidate = compress(data, codec);
    if (candidate.size() < best.second.size()) best = {codec, std::move(candidate)};
  }
  return best;
}

uint32_t crc32_of(std::string_view data) {
  uLong crc = crc32(0L, Z_NULL, 0);
  for (size_t pos = 0; pos < data.size(); pos += kZlibChunk) {
    const size_t chunk = std::min(data.size() - pos, kZlibChunk);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(data.data() + pos), static_cast<uInt>(chunk));
  }
  return static_cast<uint32_t>(crc);
}

}  // namespace pgolf
