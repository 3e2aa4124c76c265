// lrzip's ZPAQ back end, the per-group codec's compressor (record #1855 runs
// `lrzip -z -L 9`). Debian packages lrzip only as a program (no library), so
// pgolf runs that program on temporary files, one small interface; a
// machine without it gets one clear error naming the package.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace pgolf {

// Whether the `lrzip` program is on PATH.
bool lrzip_available();

// `lrzip -z -L level` of `data` (one thread, so that the bytes do not depend
// on the machine's core count).
std::string lrzip_compress(std::string_view data, int level = 9);

// The inverse; the result must be exactly `expected_size` bytes.
std::string lrzip_decompress(std::string_view data, uint64_t expected_size);

}  // namespace pgolf
