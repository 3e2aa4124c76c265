// SHA-256 (FIPS 180-4), to check downloaded files against published hashes
// without pulling in a crypto library for one function.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace pgolf {

class Sha256 {
 public:
  Sha256();
  void update(std::string_view bytes);
  // Lower-case hex of the 32-byte digest; the object is spent afterwards.
  std::string hex_digest();

 private:
  void compress(const uint8_t* block);

  std::array<uint32_t, 8> state_;
  std::array<uint8_t, 64> buffer_{};
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

std::string sha256_hex(std::string_view bytes);
// Streams the file in blocks, so shards of 200 MB need no 200 MB buffer.
std::string sha256_file(const std::filesystem::path& path);

}  // namespace pgolf
