// libFuzzer target for the artifact decoder (build: PGOLF_BUILD_FUZZ=ON with
// clang; README "Fuzzing"). An input must decode and dequantize, or be
// rejected with a pgolf::Error; any other exception aborts (a finding).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  pgolf::fuzz::decode_or_clean_error(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
