// The challenge's token shard format (fineweb_{train,val}_NNNNNN.bin) and the
// validation split built from it (spec quantize-eval-ttt §1.1-1.2):
//   256 little-endian int32 header words [20240520, 1, N, 0, ...], then
//   N little-endian uint16 token ids; the file is exactly 1024 + 2·N bytes.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace pgolf {

inline constexpr int32_t kShardMagic = 20240520;
inline constexpr int32_t kShardVersion = 1;
inline constexpr int64_t kShardHeaderInts = 256;
inline constexpr int64_t kShardHeaderBytes = kShardHeaderInts * 4;
// The official exporter cuts shards at 10^8 tokens.
inline constexpr int64_t kMaxShardTokens = 100'000'000;

// Reads and validates one shard. vocab_size <= 0 skips the token-id check.
std::vector<uint16_t> read_shard(const std::filesystem::path& file, int64_t vocab_size);

// Writes one shard atomically (temporary file + rename).
void write_shard(const std::filesystem::path& file, std::span<const uint16_t> tokens);

// The files matching `glob`, sorted by name; `what` names them in the error
// raised when nothing matches (e.g. "validation shards").
std::vector<std::filesystem::path> shard_files(const std::string& glob, const std::string& what);

// All validation shards concatenated, trimmed to ⌊(N−1)/seq_len⌋·seq_len + 1
// tokens so that every target belongs to a full sequence. 1-D int64, CPU.
// Byte sidecars matching the glob (fineweb_val_*.bin matches them) are left out.
torch::Tensor load_validation_tokens(const std::string& glob, int64_t seq_len, int64_t vocab_size);

// ---- The validation byte sidecar (CaseOps data) ------------------------------
// fineweb_val_bytes_NNNNNN.bin beside fineweb_val_NNNNNN.bin: the shard layout
// above, one uint16 per token of that shard, the token's count of ORIGINAL
// UTF-8 bytes (0 for BOS and the case operators).

// A file whose name contains "_bytes_" (the record's rule for telling them apart).
bool is_byte_sidecar(const std::filesystem::path& file);
// The sidecar a val shard would have: the last "val_" of its name becomes "val_bytes_".
std::filesystem::path byte_sidecar_of(const std::filesystem::path& val_shard);

// The sidecars of the val shards matching `glob`, concatenated in shard order
// and cut to their first `length` entries: int32, CPU. Undefined when no val
// shard has one. Fails when only some shards have one, when a sidecar is not
// a valid shard file, or when it does not hold one entry per token of its shard.
torch::Tensor load_validation_byte_sidecar(const std::string& glob, int64_t length);

}  // namespace pgolf
