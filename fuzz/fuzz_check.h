// The property the artifact fuzzer checks, shared by the libFuzzer target
// (fuzz_artifact.cpp) and the GoogleTest that runs the corpus and its
// mutations (tests/artifact/test_fuzz_corpus.cpp): any bytes either decode
// into a model that dequantizes, or fail with one pgolf::Error. Any other
// exception, a crash or a sanitizer report is a bug.
#pragma once

#include <string_view>

#include "artifact/artifact.h"
#include "common/error.h"
#include "quant/int8.h"

namespace pgolf::fuzz {

// True if decoded (and dequantized), false on a pgolf::Error; anything else escapes.
inline bool decode_or_clean_error(std::string_view bytes) {
  try {
    const LoadedArtifact loaded = decode_artifact(bytes, "fuzz input");
    (void)dequantize(loaded.model);
    return true;
  } catch (const Error&) {
    return false;
  }
}

}  // namespace pgolf::fuzz
