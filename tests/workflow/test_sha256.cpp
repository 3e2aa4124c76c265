// SHA-256 against the FIPS 180-4 examples and Python's hashlib.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "tests/test_util.h"
#include "workflow/sha256.h"

namespace pgolf {
namespace {

TEST(Sha256, FipsExamples) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // 56 bytes: the padding needs a second block.
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1'000'000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, FilesAndPieces) {
  std::string bytes;
  for (int r = 0; r < 4; ++r) {
    for (int i = 0; i < 256; ++i) bytes += static_cast<char>(i);
  }
  const std::string expected = "785b0751fc2c53dc14a4ce3d800e69ef9ce1009eb327ccf458afe09c242c26c9";
  EXPECT_EQ(sha256_hex(bytes), expected);  // hashlib.sha256(bytes(range(256)) * 4)
  Sha256 pieces;                           // fed in odd-sized pieces across block boundaries
  for (size_t at = 0; at < bytes.size(); at += 37)
    pieces.update(std::string_view(bytes).substr(at, 37));
  EXPECT_EQ(pieces.hex_digest(), expected);
  testing::ScratchDir scratch;
  std::ofstream(scratch / "f.bin", std::ios::binary) << bytes;
  EXPECT_EQ(sha256_file(scratch / "f.bin"), expected);
  EXPECT_PGOLF_ERROR(sha256_file(scratch / "missing.bin"), "cannot open");
}

}  // namespace
}  // namespace pgolf
