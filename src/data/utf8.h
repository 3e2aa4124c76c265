// Strict UTF-8 decoding, one code point at a time: what the corpus reader and
// the CaseOps transform accept as text.
#pragma once

#include <cstddef>
#include <string_view>
#include <utility>

namespace pgolf {

// The code point starting at s[pos] and its length in bytes; length 0 if the
// bytes there are not one well-formed UTF-8 sequence (a stray continuation
// byte, a truncated sequence, an overlong form, a surrogate, past U+10FFFF).
inline std::pair<char32_t, size_t> decode_utf8(std::string_view s, size_t pos) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char b0 = byte(pos);
  if (b0 < 0x80) return {b0, 1};
  const size_t len = b0 >= 0xF0 ? 4 : b0 >= 0xE0 ? 3 : b0 >= 0xC0 ? 2 : 0;
  if (len == 0 || b0 > 0xF4 || pos + len > s.size()) return {0, 0};
  char32_t cp = b0 & (0x7F >> len);
  for (size_t i = 1; i < len; ++i) {
    if ((byte(pos + i) & 0xC0) != 0x80) return {0, 0};
    cp = (cp << 6) | (byte(pos + i) & 0x3F);
  }
  static constexpr char32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[len] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return {0, 0};
  return {cp, len};
}

}  // namespace pgolf
