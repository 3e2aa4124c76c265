// Reads an 8-bit RGB/RGBA PNG (as headless Chromium writes screenshots) far
// enough to tell whether anything was drawn: the share of non-white pixels.
#pragma once

#include <filesystem>

namespace pgolf::testing {

struct PngProbe {
  int width = 0;
  int height = 0;
  double non_white = 0;  // fraction of pixels with any channel below 240
  int colored = 0;       // pixels that are neither grey nor white (chart lines, bars)
};

PngProbe probe_png(const std::filesystem::path& file);

}  // namespace pgolf::testing
