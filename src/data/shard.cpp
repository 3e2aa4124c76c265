// Shard reading/writing with one precise error per kind of damage, so a bad
// download or a wrong path is diagnosed from the message alone.
#include "data/shard.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <system_error>

#include "common/error.h"
#include "common/fs.h"

namespace pgolf {
namespace {

// The format is little-endian; on such hosts the bytes can be used as they are.
static_assert(std::endian::native == std::endian::little, "shard I/O assumes a little-endian host");

using Header = std::array<int32_t, kShardHeaderInts>;

int64_t file_size_or_fail(const std::filesystem::path& file) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(file, ec);
  PGOLF_CHECK(!ec, "shard {}: cannot read ({})", file.string(), ec.message());
  return static_cast<int64_t>(size);
}

// Checks magic, version, token count and file size; returns the token count.
int64_t check_header(const std::filesystem::path& file, const Header& header, int64_t file_size) {
  PGOLF_CHECK(header[0] == kShardMagic, "shard {}: bad magic {} (expected {})", file.string(),
              header[0], kShardMagic);
  PGOLF_CHECK(header[1] == kShardVersion, "shard {}: unsupported version {} (expected {})",
              file.string(), header[1], kShardVersion);
  const int64_t num_tokens = header[2];
  PGOLF_CHECK(num_tokens >= 0, "shard {}: negative token count {} in header", file.string(),
              num_tokens);
  const int64_t expected = kShardHeaderBytes + 2 * num_tokens;
  PGOLF_CHECK(file_size == expected,
              "shard {}: size mismatch: header says {} tokens = {} bytes, file has {} bytes",
              file.string(), num_tokens, expected, file_size);
  return num_tokens;
}

void check_token_ids(const std::filesystem::path& file, const std::vector<uint16_t>& tokens,
                     int64_t vocab_size) {
  if (vocab_size <= 0) return;
  const auto bad =
      std::find_if(tokens.begin(), tokens.end(), [&](uint16_t id) { return id >= vocab_size; });
  PGOLF_CHECK(bad == tokens.end(), "shard {}: token id {} at position {} is >= vocab size {}",
              file.string(), *bad, bad - tokens.begin(), vocab_size);
}

}  // namespace

std::vector<uint16_t> read_shard(const std::filesystem::path& file, int64_t vocab_size) {
  const int64_t file_size = file_size_or_fail(file);
  std::ifstream in(file, std::ios::binary);
  PGOLF_CHECK(in.good(), "shard {}: cannot open ({})", file.string(), std::strerror(errno));
  PGOLF_CHECK(file_size >= kShardHeaderBytes,
              "shard {}: truncated header ({} bytes, a shard starts with a {}-byte header)",
              file.string(), file_size, kShardHeaderBytes);
  Header header{};
  in.read(reinterpret_cast<char*>(header.data()), kShardHeaderBytes);
  PGOLF_CHECK(in.good(), "shard {}: read error in header", file.string());
  const int64_t num_tokens = check_header(file, header, file_size);

  std::vector<uint16_t> tokens(static_cast<size_t>(num_tokens));
  in.read(reinterpret_cast<char*>(tokens.data()), 2 * num_tokens);
  PGOLF_CHECK(in.good() || num_tokens == 0, "shard {}: short read of {} tokens", file.string(),
              num_tokens);
  check_token_ids(file, tokens, vocab_size);
  return tokens;
}

void write_shard(const std::filesystem::path& file, std::span<const uint16_t> tokens) {
  const int64_t num_tokens = static_cast<int64_t>(tokens.size());
  PGOLF_CHECK(num_tokens <= INT32_MAX, "shard {}: {} tokens do not fit an int32 header",
              file.string(), num_tokens);
  Header header{};
  header[0] = kShardMagic;
  header[1] = kShardVersion;
  header[2] = static_cast<int32_t>(num_tokens);
  std::string bytes(static_cast<size_t>(kShardHeaderBytes + 2 * num_tokens), '\0');
  std::memcpy(bytes.data(), header.data(), kShardHeaderBytes);
  if (num_tokens > 0) std::memcpy(bytes.data() + kShardHeaderBytes, tokens.data(), 2 * num_tokens);
  write_file_atomic(file, bytes);
}

std::vector<std::filesystem::path> shard_files(const std::string& glob, const std::string& what) {
  std::vector<std::filesystem::path> files = glob_files(glob);
  PGOLF_CHECK(!files.empty(), "no files match {} ({})", glob, what);
  return files;
}

namespace {

// A shard's token count from its header (checked against the file size).
int64_t shard_token_count(const std::filesystem::path& file) {
  const int64_t file_size = file_size_or_fail(file);
  PGOLF_CHECK(file_size >= kShardHeaderBytes,
              "shard {}: truncated header ({} bytes, a shard starts with a {}-byte header)",
              file.string(), file_size, kShardHeaderBytes);
  std::ifstream in(file, std::ios::binary);
  Header header{};
  in.read(reinterpret_cast<char*>(header.data()), kShardHeaderBytes);
  PGOLF_CHECK(in.good(), "shard {}: read error in header", file.string());
  return check_header(file, header, file_size);
}

// The token shards matching a validation glob, without the byte sidecars.
std::vector<std::filesystem::path> validation_shards(const std::string& glob) {
  std::vector<std::filesystem::path> files;
  for (auto& file : shard_files(glob, "validation shards")) {
    if (!is_byte_sidecar(file)) files.push_back(std::move(file));
  }
  PGOLF_CHECK(!files.empty(), "no validation shards match {} (only byte sidecars)", glob);
  return files;
}

}  // namespace

torch::Tensor load_validation_tokens(const std::string& glob, int64_t seq_len, int64_t vocab_size) {
  PGOLF_CHECK(seq_len > 0, "validation: seq_len must be positive, got {}", seq_len);
  std::vector<uint16_t> all;
  for (const auto& file : validation_shards(glob)) {
    const std::vector<uint16_t> tokens = read_shard(file, vocab_size);
    all.insert(all.end(), tokens.begin(), tokens.end());
  }
  const int64_t total = static_cast<int64_t>(all.size());
  const int64_t usable = total > 0 ? ((total - 1) / seq_len) * seq_len : 0;
  PGOLF_CHECK(usable > 0,
              "validation shards {} hold {} tokens, too few for one sequence of {} (need {})", glob,
              total, seq_len, seq_len + 1);
  torch::Tensor out = torch::empty({usable + 1}, torch::kInt64);
  int64_t* dst = out.data_ptr<int64_t>();
  std::copy(all.begin(), all.begin() + usable + 1, dst);
  return out;
}

bool is_byte_sidecar(const std::filesystem::path& file) {
  return file.filename().string().find("_bytes_") != std::string::npos;
}

std::filesystem::path byte_sidecar_of(const std::filesystem::path& val_shard) {
  std::string name = val_shard.filename().string();
  const size_t at = name.rfind("val_");
  if (at == std::string::npos) return {};
  name.insert(at + 4, "bytes_");
  return val_shard.parent_path() / name;
}

torch::Tensor load_validation_byte_sidecar(const std::string& glob, int64_t length) {
  std::vector<std::filesystem::path> with, without;
  const std::vector<std::filesystem::path> shards = validation_shards(glob);
  for (const auto& shard : shards) {
    const auto sidecar = byte_sidecar_of(shard);
    std::error_code ec;
    (!sidecar.empty() && std::filesystem::exists(sidecar, ec) ? with : without).push_back(shard);
  }
  if (with.empty()) return {};
  PGOLF_CHECK(without.empty(),
              "validation shard {} has no byte sidecar {} but {} has one: every val shard needs "
              "its sidecar, or none",
              without.front().string(), byte_sidecar_of(without.front()).filename().string(),
              with.front().filename().string());
  std::vector<uint16_t> all;
  for (const auto& shard : shards) {
    const auto sidecar = byte_sidecar_of(shard);
    const int64_t tokens = shard_token_count(shard);
    const std::vector<uint16_t> bytes = read_shard(sidecar, 0);
    PGOLF_CHECK(static_cast<int64_t>(bytes.size()) == tokens,
                "byte sidecar {} holds {} entries but its shard {} holds {} tokens: they do not "
                "belong together",
                sidecar.string(), bytes.size(), shard.filename().string(), tokens);
    all.insert(all.end(), bytes.begin(), bytes.end());
  }
  PGOLF_CHECK(length >= 0 && length <= static_cast<int64_t>(all.size()),
              "the byte sidecars of {} hold {} entries, fewer than the {} tokens asked for", glob,
              all.size(), length);
  torch::Tensor out = torch::empty({length}, torch::kInt32);
  std::copy(all.begin(), all.begin() + length, out.data_ptr<int32_t>());
  return out;
}

}  // namespace pgolf
