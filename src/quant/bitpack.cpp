// Bit packing (see bitpack.h), through a 64-bit accumulator: at most 7
// pending bits plus one 8-bit code, so it never overflows.
#include "quant/bitpack.h"

#include <torch/torch.h>

#include "common/error.h"

namespace pgolf {
namespace {

void check_bits(int bits) {
  PGOLF_CHECK(bits >= 1 && bits <= 8, "bit packing: width {} is not 1..8", bits);
}

}  // namespace

uint64_t packed_bytes(uint64_t count, int bits) {
  check_bits(bits);
  return (count * static_cast<uint64_t>(bits) + 7) / 8;
}

void pack_codes(const torch::Tensor& codes, int bits, std::string& out) {
  check_bits(bits);
  PGOLF_CHECK(codes.defined() && codes.scalar_type() == torch::kInt8,
              "bit packing: codes must be an int8 tensor");
  const torch::Tensor c = codes.detach().to(torch::kCPU).contiguous();
  const int8_t* src = c.data_ptr<int8_t>();
  const int64_t n = c.numel();
  const int lo = -(1 << (bits - 1));
  const int hi = (1 << (bits - 1)) - 1;
  const uint32_t mask = (1u << bits) - 1u;
  const size_t start = out.size();
  out.resize(start + packed_bytes(static_cast<uint64_t>(n), bits));
  char* dst = out.data() + start;
  uint64_t acc = 0;
  int pending = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int v = src[i];
    if (v < lo || v > hi) {
      out.resize(start);
      fail("bit packing: code {} at index {} does not fit in {} bits", v, i, bits);
    }
    acc |= static_cast<uint64_t>(static_cast<uint32_t>(v) & mask) << pending;
    pending += bits;
    while (pending >= 8) {
      *dst++ = static_cast<char>(acc & 0xFFu);
      acc >>= 8;
      pending -= 8;
    }
  }
  if (pending > 0) *dst++ = static_cast<char>(acc & 0xFFu);
}

std::string pack_codes(const torch::Tensor& codes, int bits) {
  std::string out;
  pack_codes(codes, bits, out);
  return out;
}

torch::Tensor unpack_codes(std::string_view bytes, torch::IntArrayRef shape, int bits) {
  check_bits(bits);
  torch::Tensor out = torch::empty(shape, torch::TensorOptions().dtype(torch::kInt8));
  const int64_t n = out.numel();
  const uint64_t expected = packed_bytes(static_cast<uint64_t>(n), bits);
  PGOLF_CHECK(bytes.size() == expected, "bit packing: {} codes of {} bits need {} bytes, got {}", n,
              bits, expected, bytes.size());
  int8_t* dst = out.data_ptr<int8_t>();
  const auto* src = reinterpret_cast<const unsigned char*>(bytes.data());
  const uint64_t mask = (uint64_t{1} << bits) - 1u;
  const uint64_t sign = uint64_t{1} << (bits - 1);
  uint64_t acc = 0;
  int available = 0;
  for (int64_t i = 0; i < n; ++i) {
    while (available < bits) {
      acc |= static_cast<uint64_t>(*src++) << available;
      available += 8;
    }
    const uint64_t u = acc & mask;
    acc >>= bits;
    available -= bits;
    // Sign-extend: u in [2^(b-1), 2^b) is negative.
    dst[i] = static_cast<int8_t>(static_cast<int>(u) - ((u & sign) ? (1 << bits) : 0));
  }
  PGOLF_CHECK(acc == 0, "bit packing: the padding bits of the last byte are not zero");
  return out;
}

}  // namespace pgolf
