#include "tests/workflow/png_probe.h"

#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/fs.h"

namespace pgolf::testing {
namespace {

uint32_t be32(const std::string& s, size_t at) {
  return uint32_t{static_cast<uint8_t>(s[at])} << 24 |
         uint32_t{static_cast<uint8_t>(s[at + 1])} << 16 |
         uint32_t{static_cast<uint8_t>(s[at + 2])} << 8 | uint32_t{static_cast<uint8_t>(s[at + 3])};
}

uint8_t paeth(int a, int b, int c) {
  const int p = a + b - c;
  const int pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
  if (pa <= pb && pa <= pc) return static_cast<uint8_t>(a);
  return static_cast<uint8_t>(pb <= pc ? b : c);
}

}  // namespace

PngProbe probe_png(const std::filesystem::path& file) {
  const std::string png = read_file(file);
  PGOLF_CHECK(png.size() > 33 && png.compare(1, 3, "PNG") == 0, "{}: not a PNG", file.string());
  PngProbe probe;
  probe.width = static_cast<int>(be32(png, 16));
  probe.height = static_cast<int>(be32(png, 20));
  const int depth = static_cast<uint8_t>(png[24]);
  const int color = static_cast<uint8_t>(png[25]);
  PGOLF_CHECK(depth == 8 && (color == 2 || color == 6), "{}: only 8-bit RGB(A) is read",
              file.string());
  const size_t bpp = color == 6 ? 4 : 3;
  std::string idat;
  for (size_t at = 8; at + 8 <= png.size();) {
    const uint32_t len = be32(png, at);
    if (png.compare(at + 4, 4, "IDAT") == 0) idat += png.substr(at + 8, len);
    at += 12 + len;
  }
  const size_t stride = static_cast<size_t>(probe.width) * bpp;
  std::vector<uint8_t> raw((stride + 1) * static_cast<size_t>(probe.height));
  uLongf raw_size = raw.size();
  PGOLF_CHECK(uncompress(raw.data(), &raw_size, reinterpret_cast<const Bytef*>(idat.data()),
                         idat.size()) == Z_OK,
              "{}: bad image data", file.string());
  std::vector<uint8_t> prev(stride, 0), row(stride);
  int64_t non_white = 0;
  for (int y = 0; y < probe.height; ++y) {
    const uint8_t* in = raw.data() + static_cast<size_t>(y) * (stride + 1);
    const int filter = in[0];
    for (size_t x = 0; x < stride; ++x) {
      const int a = x >= bpp ? row[x - bpp] : 0, b = prev[x], c = x >= bpp ? prev[x - bpp] : 0;
      const int predicted = filter == 1   ? a
                            : filter == 2 ? b
                            : filter == 3 ? (a + b) / 2
                            : filter == 4 ? paeth(a, b, c)
                                          : 0;
      row[x] = static_cast<uint8_t>(in[1 + x] + predicted);
    }
    for (size_t x = 0; x < stride; x += bpp) {
      const int r = row[x], g = row[x + 1], b = row[x + 2];
      if (r < 240 || g < 240 || b < 240) ++non_white;
      if (std::max({r, g, b}) - std::min({r, g, b}) > 60) ++probe.colored;
    }
    std::swap(prev, row);
  }
  probe.non_white =
      static_cast<double>(non_white) / (static_cast<double>(probe.width) * probe.height);
  return probe;
}

}  // namespace pgolf::testing
