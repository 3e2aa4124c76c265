// Compression codecs for the artifact payload: none, zlib (the baseline's
// zlib level 9), zstd (one frame, level 22, as #461/#456/#562), lzma (xz
// container, LZMA2, CRC64 check, as #1406's lzma.compress(preset=9)) and brotli
// (one raw stream, quality 11, 4 MiB window, generic mode, no byte shuffle: the
// record #1855's default brotli.compress(raw, quality=11)).
// decompress() is for untrusted bytes: it errors cleanly on corrupt, truncated
// or trailing data and on any size other than the expected one, and it never
// allocates much beyond what the data really decompresses to.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "common/enum_names.h"

namespace pgolf {

// kPergroup (artifact/pergroup.h) works on the whole artifact, with its
// tensor table: compress() and decompress() refuse it.
enum class Codec { kNone, kZlib, kZstd, kLzma, kBrotli, kPergroup };

constexpr std::array<EnumName<Codec>, 6> enum_names(Codec) {
  return {{{Codec::kNone, "none"},
           {Codec::kZlib, "zlib"},
           {Codec::kZstd, "zstd"},
           {Codec::kLzma, "lzma"},
           {Codec::kBrotli, "brotli"},
           {Codec::kPergroup, "pergroup"}}};
}
// "none" | "zlib" | "zstd" | "lzma" | "brotli" | "pergroup"; anything else is a pgolf::Error.
inline Codec parse_codec(std::string_view name) { return parse_name<Codec>(name, "codec"); }
inline std::string_view codec_name(Codec codec) { return name_of(codec); }
// zlib 9, zstd 22, lzma 9, brotli 11, pergroup 9 (lrzip's; none: 0).
int default_level(Codec codec);

// Levels: zlib 0-9, zstd ZSTD_minCLevel()..ZSTD_maxCLevel(), lzma presets 0-9,
// brotli qualities 0-11 (window always 2^22, brotli's and the record's default).
std::string compress(std::string_view data, Codec codec, int level);
std::string compress(std::string_view data, Codec codec);  // at default_level(codec)

// Decompresses one complete stream that must expand to exactly expected_size bytes.
std::string decompress(std::string_view data, Codec codec, uint64_t expected_size);

// Brotli at any window (10-24 bits); the artifact codec uses 22, the per-group
// codec's remainder 24. brotli_decompress reads any window.
std::string brotli_compress(std::string_view data, int quality, int window_bits);
std::string brotli_decompress(std::string_view data, uint64_t expected_size);

// "auto": tries zlib 9, zstd 22, lzma 9 and brotli 11 and keeps the smallest (the
// first on ties; the artifact adds pergroup where lrzip is installed).
std::pair<Codec, std::string> compress_smallest(std::string_view data);

// zlib's CRC-32 of `data`.
uint32_t crc32_of(std::string_view data);

}  // namespace pgolf
