// The pgolf artifact: one self-describing file holding a quantized model and
// the config that built it, so `pgolf eval ARTIFACT` needs nothing else but
// the tokenizer and the validation shards.
//
// Layout (all integers little-endian):
//   0   8 bytes  magic "PGOLFART"
//   8   u32      format version (kArtifactVersion)
//   12  u32      CRC-32 of the JSON header bytes
//   16  u64      JSON header length N
//   24  N bytes  JSON header: pgolf version, creation time, config, quant
//                format, payload codec/sizes/CRCs, and the tensor table
//   24+N         the compressed payload; the file ends exactly there.
// The uncompressed payload is every tensor's bytes (then its scale's bytes)
// concatenated in table order, with no gaps. Version 2 added the intN kinds
// with their code width ("bits"), and intN codes stored packed at that width
// ("packed_bits", quant/bitpack.h) when the model's storage says so. Version
// 3 (this writer) adds #1855's LQER factors of an intN entry ("lqer": packing
// and the chunks a, a_scale, b, b_scale after the entry's scale) and the
// per-group codec (artifact/pergroup.h). Versions 1 (int8 only) and 2 are
// still read. The reader checks every field,
// both checksums and every table entry, so a damaged file gives one clear
// pgolf::Error and never wrong weights.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "artifact/compress.h"
#include "quant/int8.h"

namespace pgolf {

inline constexpr std::string_view kArtifactMagic = "PGOLFART";
inline constexpr uint32_t kArtifactVersion = 3;     // what encode_artifact writes
inline constexpr uint32_t kArtifactMinVersion = 1;  // the oldest decode_artifact reads
inline constexpr size_t kArtifactPreambleBytes = 24;
// Recorded in each artifact; keep in step with project(VERSION) in CMakeLists.txt.
inline constexpr std::string_view kPgolfVersion = "0.1.0";

// The header's scalar fields (the tensor table becomes LoadedArtifact::model).
struct ArtifactInfo {
  uint32_t format_version = kArtifactVersion;
  std::string pgolf_version;
  std::string created;  // UTC, ISO 8601
  std::string quant_format;
  Codec codec = Codec::kNone;
  int level = 0;
  uint64_t header_bytes = 0;  // JSON header length N
  uint64_t compressed_bytes = 0;
  uint64_t uncompressed_bytes = 0;
  uint32_t compressed_crc32 = 0;
  uint32_t uncompressed_crc32 = 0;
  uint64_t file_bytes = 0;  // preamble + header + compressed payload
  // The per-group codec's stream sizes (7 groups, remainder, row orders); empty otherwise.
  std::vector<uint64_t> pergroup_streams;
};

struct LoadedArtifact {
  nlohmann::json config;
  QuantizedModel model;
  ArtifactInfo info;
};

// The artifact's bytes. `config` is to_json(config) (config/config.h).
std::string encode_artifact(const QuantizedModel& model, const nlohmann::json& config, Codec codec,
                            int level);
// Same, compressed with whichever of zlib 9 / zstd 22 / lzma 9 is smallest.
std::string encode_artifact_smallest(const QuantizedModel& model, const nlohmann::json& config);

// encode_artifact, written atomically; returns the file size in bytes.
int64_t write_artifact(const std::filesystem::path& path, const QuantizedModel& model,
                       const nlohmann::json& config, Codec codec, int level);

// Reads and fully validates an artifact; `source` names it in error messages.
LoadedArtifact read_artifact(const std::filesystem::path& path);
LoadedArtifact decode_artifact(std::string_view bytes, const std::string& source = "artifact");

// Challenge size accounting: the whole artifact file (header included) plus
// pgolf's code bytes (common/code_size.h), against the 16,000,000-byte cap.
struct SizeReport {
  int64_t model_bytes = 0;
  int64_t code_bytes = 0;
  int64_t total_bytes = 0;
  static constexpr int64_t kCap = 16'000'000;

  bool fits() const { return total_bytes <= kCap; }
  // e.g. "model 15,800,300 + code 126,065 = 15,926,365 bytes (73,635 under the
  // 16,000,000 cap)".
  std::string describe() const;
};

SizeReport size_report(int64_t artifact_file_bytes);

// The reference's names for what an artifact holds: "int8" for the
// baseline's format, "int6" for the entries' mixed int5/int6 formats (their
// logs say int6 throughout: `Serialized model int6+zstd`, `final_int6_roundtrip`).
std::string_view quant_label(std::string_view quant_format);
// The round-trip log name: final_int8_zlib_roundtrip (baseline, codec named),
// final_int6_roundtrip (the entries).
std::string roundtrip_label(std::string_view quant_format, Codec codec);
SizeReport size_report(int64_t artifact_file_bytes, int64_t code_bytes);

}  // namespace pgolf
