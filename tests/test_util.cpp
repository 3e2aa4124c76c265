#include "tests/test_util.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>

namespace pgolf::testing {

std::filesystem::path shared_dir() {
  std::filesystem::path candidate;
  if (const char* env = std::getenv("PGOLF_SHARED")) {
    candidate = env;
  } else {
    candidate = std::filesystem::path(PGOLF_SOURCE_DIR) / ".." / "shared";
  }
  if (std::filesystem::exists(candidate / "golden")) return std::filesystem::canonical(candidate);
  return {};
}

std::filesystem::path official_tokenizer() {
  return shared_dir() / "data" / "tokenizers" / "fineweb_1024_bpe.model";
}

ScratchDir::ScratchDir() {
  static std::atomic<int> counter{0};
  path_ = std::filesystem::temp_directory_path() /
          ("pgolf_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_);
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace pgolf::testing
