// Tests for quant/bitpack: exact round trips at every width and odd lengths,
// the documented bit layout on hand-made bytes, and clear errors for codes
// that do not fit, wrong lengths and nonzero padding.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>

#include "quant/bitpack.h"
#include "tests/quant/single_thread.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

class QuantBitpackTest : public testing::SingleThreadTest {};

TEST_F(QuantBitpackTest, RoundTripEveryWidthAndOddLengths) {
  torch::manual_seed(2);
  for (int bits = 1; bits <= 8; ++bits) {
    for (const int64_t n : {0, 1, 2, 3, 5, 7, 8, 9, 13, 63, 1001}) {
      SCOPED_TRACE(std::to_string(bits) + " bits, " + std::to_string(n) + " codes");
      const torch::Tensor codes =
          torch::randint(-(1 << (bits - 1)), 1 << (bits - 1), {n}, torch::kInt8);
      const std::string bytes = pack_codes(codes, bits);
      EXPECT_EQ(bytes.size(), static_cast<size_t>((n * bits + 7) / 8));
      EXPECT_EQ(bytes.size(), packed_bytes(static_cast<uint64_t>(n), bits));
      EXPECT_TRUE(torch::equal(unpack_codes(bytes, {n}, bits), codes));
    }
  }
}

TEST_F(QuantBitpackTest, ExtremesAndShapes) {
  // Both ends of the range, in a 2-D shape with an odd number of codes.
  const torch::Tensor codes =
      torch::tensor({-32, 31, 0, -1, 1, -31, 30, -32, 31}, torch::kInt8).reshape({3, 3});
  const std::string bytes = pack_codes(codes, 6);
  EXPECT_EQ(bytes.size(), 7u);  // 54 bits
  const torch::Tensor back = unpack_codes(bytes, {3, 3}, 6);
  EXPECT_EQ(back.sizes(), codes.sizes());
  EXPECT_TRUE(torch::equal(back, codes));
}

TEST_F(QuantBitpackTest, LayoutByHand) {
  // int6 [1, -1, 31, -32] = 000001 111111 011111 100000, least significant
  // first: byte0 = 01 | 11<<6 = 0xC1, byte1 = 1111 | 1111<<4 = 0xFF,
  // byte2 = 01 | 100000<<2 = 0x81.
  EXPECT_EQ(pack_codes(torch::tensor({1, -1, 31, -32}, torch::kInt8), 6), "\xC1\xFF\x81");
  // int5 [-16, 15, 0] = 10000 01111 00000 (15 bits): 0xF0, 0x01.
  EXPECT_EQ(pack_codes(torch::tensor({-16, 15, 0}, torch::kInt8), 5), std::string("\xF0\x01", 2));
}

TEST_F(QuantBitpackTest, Errors) {
  EXPECT_PGOLF_ERROR(pack_codes(torch::tensor({0, 32}, torch::kInt8), 6),
                     "code 32 at index 1 does not fit in 6 bits");
  EXPECT_PGOLF_ERROR(pack_codes(torch::tensor({-17}, torch::kInt8), 5), "does not fit in 5 bits");
  EXPECT_PGOLF_ERROR(pack_codes(torch::tensor({0}, torch::kInt8), 9), "width 9 is not 1..8");
  EXPECT_PGOLF_ERROR(pack_codes(torch::tensor({0}, torch::kInt32), 6), "must be an int8 tensor");
  EXPECT_PGOLF_ERROR(unpack_codes(std::string(3, '\0'), {5}, 6), "need 4 bytes, got 3");
  // 3 codes of 5 bits leave one padding bit: it must be zero.
  EXPECT_PGOLF_ERROR(unpack_codes(std::string("\x00\x80", 2), {3}, 5), "padding bits");
  // A failed pack leaves the output as it was.
  std::string out = "ab";
  EXPECT_THROW(pack_codes(torch::tensor({1, 99}, torch::kInt8), 6, out), Error);
  EXPECT_EQ(out, "ab");
}

}  // namespace
}  // namespace pgolf
