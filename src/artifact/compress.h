// Compression codecs for the artifact payload: none, zlib (the baseline's
// zlib level 9), zstd (one frame, level 22, as #461/#456/#562) and lzma (xz
// container, LZMA2, CRC64 check, as #1406's lzma.compress(preset=9)).
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

enum class Codec { kNone, kZlib, kZstd, kLzma };

constexpr std::array<EnumName<Codec>, 4> enum_names(Codec) {
  return {{{Codec::kNone, "none"},
           {Codec::kZlib, "zlib"},
           {Codec::kZstd, "zstd"},
           {Codec::kLzma, "lzma"}}};
}
// "none" | "zlib" | "zstd" | "lzma"; anything else is a pgolf::Error.
inline Codec parse_codec(std::string_view name) { return parse_name<Codec>(name, "codec"); }
inline std::string_view codec_name(Codec codec) { return name_of(codec); }
// zlib 9, zstd 22, lzma 9 (none: 0).
int default_level(Codec codec);

// Levels: zlib 0-9, zstd ZSTD_minCLevel()..ZSTD_maxCLevel(), lzma presets 0-9.
std::string compress(std::string_view data, Codec codec, int level);
std::string compress(std::string_view data, Codec codec);  // at default_level(codec)

// Decompresses one complete stream that must expand to exactly expected_size bytes.
std::string decompress(std::string_view data, Codec codec, uint64_t expected_size);

// "auto": tries zlib 9, zstd 22 and lzma 9 and keeps the smallest (the first on ties).
std::pair<Codec, std::string> compress_smallest(std::string_view data);

// zlib's CRC-32 of `data`.
uint32_t crc32_of(std::string_view data);

}  // namespace pgolf
