// Bit packing of integer codes: n codes of b bits (two's complement, each in
// [-2^(b-1), 2^(b-1) - 1]) become ceil(n·b/8) bytes. Code i occupies stream
// bits [i·b, (i+1)·b), least significant first, and stream bit k is bit k%8
// of byte k/8; the unused high bits of the last byte are zero. This is the
// alternative to the entries' one-int8-per-code containers (spec §3.11),
// selected by QuantizedModel::storage, so both can be measured compressed.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace pgolf {

// Bytes that n codes of `bits` bits take packed.
uint64_t packed_bytes(uint64_t count, int bits);

// Appends the packed codes (an int8 tensor, any shape, row-major) to `out`.
// Throws pgolf::Error if bits is not 1..8 or a code does not fit.
void pack_codes(const torch::Tensor& codes, int bits, std::string& out);
std::string pack_codes(const torch::Tensor& codes, int bits);

// The inverse: an int8 tensor of `shape` from exactly packed_bytes(numel,
// bits) bytes. Throws pgolf::Error on a wrong length or nonzero padding bits.
torch::Tensor unpack_codes(std::string_view bytes, torch::IntArrayRef shape, int bits);

}  // namespace pgolf
