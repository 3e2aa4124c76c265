// Artifact encoding and fully validating decoding (layout in artifact.h).
// Decoding checks, in order: magic, version, header length, header CRC, JSON,
// header fields, exact file size, payload CRC, the whole tensor table against
// the payload size, then decompression and the uncompressed CRC. Only then are
// tensors built, so a damaged file never yields partial or wrong weights.
// Version 2 adds the intN kinds, each integer entry's code width ("bits") and
// bit-packed code chunks ("packed_bits"); version 1 files still decode.
#include "artifact/artifact.h"

#include <bit>
#include <cstring>
#include <ctime>
#include <limits>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "artifact/lrzip.h"
#include "artifact/pergroup.h"
#include "common/code_size.h"
#include "common/error.h"
#include "common/format.h"
#include "common/fs.h"
#include "io/safetensors.h"
#include "quant/bitpack.h"
#include "quant/formats.h"

namespace pgolf {
namespace {

using Json = nlohmann::json;
using Kind = QuantizedEntry::Kind;

// Far above any model this challenge allows (the cap is 16 MB compressed);
// bounds what a forged size field can make the decoder produce.
constexpr uint64_t kMaxUncompressedBytes = uint64_t{1} << 34;

template <typename T>
void append_le(std::string& out, T value) {
  static_assert(std::endian::native == std::endian::little, "the artifact is little-endian");
  out.append(reinterpret_cast<const char*>(&value), sizeof(T));
}

template <typename T>
T read_le(std::string_view bytes, size_t offset) {
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof(T));
  return value;
}

// ---------------------------------------------------------------------------
// Encoding

// The safetensors name of `dtype`, or an error naming the tensor.
std::string dtype_of(const std::string& name, torch::ScalarType dtype) {
  try {
    return std::string(dtype_name(dtype));
  } catch (const Error&) {
    fail("artifact: tensor '{}' has unsupported dtype {}", name, c10::toString(dtype));
  }
}

// Appends one tensor's bytes to the payload; returns its table fields.
Json append_chunk(std::string& payload, const std::string& name, const torch::Tensor& tensor) {
  PGOLF_CHECK(tensor.defined(), "artifact: tensor '{}' is undefined", name);
  const torch::Tensor cpu = tensor.detach().to(torch::kCPU).contiguous();
  Json chunk = {{"dtype", dtype_of(name, cpu.scalar_type())},
                {"shape", cpu.sizes().vec()},
                {"offset", payload.size()},
                {"bytes", cpu.nbytes()}};
  if (cpu.nbytes() > 0) payload.append(static_cast<const char*>(cpu.data_ptr()), cpu.nbytes());
  return chunk;
}

bool is_intn(Kind kind) { return kind == Kind::kIntNPerRow || kind == Kind::kIntNPerTensor; }

// Whether every code of an int8 tensor lies in [-2^(bits-1), 2^(bits-1) - 1].
bool codes_in_range(const torch::Tensor& q, int bits) {
  if (q.numel() == 0) return true;
  return q.min().item<int>() >= -(1 << (bits - 1)) && q.max().item<int>() < (1 << (bits - 1));
}

// An intN entry's codes packed at their width: append_chunk's table fields
// plus "packed_bits".
Json append_packed_chunk(std::string& payload, const QuantizedEntry& entry) {
  const torch::Tensor cpu = entry.q.detach().to(torch::kCPU).contiguous();
  const size_t offset = payload.size();
  pack_codes(cpu, entry.bits, payload);
  return {{"dtype", dtype_of(entry.name, cpu.scalar_type())},
          {"shape", cpu.sizes().vec()},
          {"offset", offset},
          {"bytes", payload.size() - offset},
          {"packed_bits", entry.bits}};
}

// Integer entries must carry int8 codes of a width their kind allows.
void check_codes(const QuantizedEntry& entry) {
  const bool int8_kind = entry.kind == Kind::kInt8PerRow || entry.kind == Kind::kInt8PerTensor;
  const bool bits_ok = int8_kind ? entry.bits == 8 : entry.bits >= 2 && entry.bits <= 7;
  PGOLF_CHECK(bits_ok, "artifact: tensor '{}': {} bits do not fit kind {}", entry.name, entry.bits,
              kind_name(entry.kind));
  PGOLF_CHECK(entry.q.defined() && entry.q.scalar_type() == torch::kInt8,
              "artifact: tensor '{}': codes are not int8", entry.name);
  PGOLF_CHECK(int8_kind || codes_in_range(entry.q, entry.bits),
              "artifact: tensor '{}': a code does not fit in {} bits", entry.name, entry.bits);
}

// An entry's LQER factors (v3): the packing and four chunks, A, its scale, B,
// its scale, after the entry's codes and scale.
Json append_lqer(std::string& payload, const QuantizedEntry& entry) {
  const LowRankFactors& f = entry.lqer;
  PGOLF_CHECK(entry.kind == Kind::kIntNPerRow, "artifact: tensor '{}': LQER needs kind {}",
              entry.name, kind_name(Kind::kIntNPerRow));
  check_lqer_factors(f, entry.q.size(0), entry.q.size(1), "artifact: tensor '" + entry.name + "'");
  Json lqer = {{"packing", f.asymmetric ? "asymmetric" : "symmetric"}};
  if (!f.asymmetric) lqer["bits"] = f.bits;
  lqer["a"] = append_chunk(payload, entry.name + " (lqer a)", f.a);
  lqer["a_scale"] = append_chunk(payload, entry.name + " (lqer a scale)", f.a_scale);
  lqer["b"] = append_chunk(payload, entry.name + " (lqer b)", f.b);
  lqer["b_scale"] = append_chunk(payload, entry.name + " (lqer b scale)", f.b_scale);
  return lqer;
}

// The tensor table and the uncompressed payload.
std::pair<Json, std::string> build_payload(const QuantizedModel& model) {
  Json table = Json::array();
  std::string payload;
  for (const auto& entry : model.entries) {
    if (is_integer_kind(entry.kind)) check_codes(entry);
    const bool packed = is_intn(entry.kind) && model.storage == CodeStorage::kBitPacked;
    Json row =
        packed ? append_packed_chunk(payload, entry) : append_chunk(payload, entry.name, entry.q);
    row["name"] = entry.name;
    row["kind"] = std::string(kind_name(entry.kind));
    row["orig_dtype"] = dtype_of(entry.name, entry.orig_dtype);
    if (is_integer_kind(entry.kind)) {
      row["bits"] = entry.bits;
      row["scale"] = append_chunk(payload, entry.name + " (scale)", entry.scale);
    }
    if (entry.lqer.defined()) row["lqer"] = append_lqer(payload, entry);
    table.push_back(std::move(row));
  }
  return {std::move(table), std::move(payload)};
}

// The int8 code matrices the per-group codec groups: every integer entry's
// 2-D codes stored as int8 containers (not bit-packed).
std::vector<CodeMatrix> code_matrices(const Json& table) {
  std::vector<CodeMatrix> codes;
  for (const Json& row : table) {
    const auto kind = parse_kind_name(row.at("kind").get<std::string>());
    if (!kind || !is_integer_kind(*kind) || row.contains("packed_bits") ||
        row.at("shape").size() != 2) {
      continue;
    }
    codes.push_back({row.at("name").get<std::string>(), row.at("shape")[0].get<int64_t>(),
                     row.at("shape")[1].get<int64_t>(), row.at("offset").get<uint64_t>()});
  }
  return codes;
}

std::string compress_payload(std::string_view payload, const Json& table, Codec codec, int level) {
  if (codec == Codec::kPergroup) return pergroup_compress(payload, code_matrices(table), level);
  return compress(payload, codec, level);
}

std::string assemble(const QuantizedModel& model, const Json& config, Json table,
                     std::string_view payload, Codec codec, int level,
                     std::string_view compressed) {
  const Json header = {
      {"pgolf_version", std::string(kPgolfVersion)},
      {"created", now_string(TimeFormat::kIso8601)},
      {"config", config},
      {"quant_format", model.format},
      {"payload",
       {{"codec", std::string(codec_name(codec))},
        {"level", level},
        {"compressed_bytes", compressed.size()},
        {"uncompressed_bytes", payload.size()},
        {"compressed_crc32", crc32_of(compressed)},
        {"uncompressed_crc32", crc32_of(payload)}}},
      {"tensors", std::move(table)},
  };
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    fail("artifact: cannot encode the header ({})", e.what());
  }
  std::string out;
  out.reserve(kArtifactPreambleBytes + text.size() + compressed.size());
  out.append(kArtifactMagic);
  append_le<uint32_t>(out, kArtifactVersion);
  append_le<uint32_t>(out, crc32_of(text));
  append_le<uint64_t>(out, text.size());
  out += text;
  out.append(compressed);
  return out;
}

// ---------------------------------------------------------------------------
// Decoding: typed access to header fields, each failure naming the field.

class HeaderReader {
 public:
  explicit HeaderReader(const std::string& source) : source_(source) {}

  // `where` is the object's path ("" for the top level, "payload", "tensors[3]").
  const Json& field(const Json& object, const char* key, const std::string& where) const {
    const auto it = object.find(key);
    PGOLF_CHECK(it != object.end(), "{}: artifact header: field '{}' is missing", source_,
                path(where, key));
    return *it;
  }
  std::string string(const Json& object, const char* key, const std::string& where) const {
    const Json& value = field(object, key, where);
    PGOLF_CHECK(value.is_string(), "{}: artifact header: field '{}' is not a string", source_,
                path(where, key));
    return value.get<std::string>();
  }
  uint64_t unsigned_int(const Json& object, const char* key, const std::string& where) const {
    const Json& value = field(object, key, where);
    PGOLF_CHECK(value.is_number_unsigned(),
                "{}: artifact header: field '{}' is not a non-negative integer", source_,
                path(where, key));
    return value.get<uint64_t>();
  }
  uint32_t crc(const Json& object, const char* key, const std::string& where) const {
    const uint64_t value = unsigned_int(object, key, where);
    PGOLF_CHECK(value <= std::numeric_limits<uint32_t>::max(),
                "{}: artifact header: field '{}' is not a CRC-32", source_, path(where, key));
    return static_cast<uint32_t>(value);
  }
  const Json& object(const Json& object, const char* key, const std::string& where) const {
    const Json& value = field(object, key, where);
    PGOLF_CHECK(value.is_object(), "{}: artifact header: field '{}' is not an object", source_,
                path(where, key));
    return value;
  }

 private:
  static std::string path(const std::string& where, const char* key) {
    return where.empty() ? std::string(key) : where + "." + key;
  }
  const std::string& source_;
};

Codec header_codec(const std::string& name, const std::string& source) {
  if (const auto codec = find_by_name<Codec>(name)) return *codec;
  fail("{}: artifact header: unknown codec '{}'", source, name);
}

ArtifactInfo parse_info(const Json& header, const HeaderReader& reader, const std::string& source) {
  ArtifactInfo info;
  info.pgolf_version = reader.string(header, "pgolf_version", "");
  info.created = reader.string(header, "created", "");
  info.quant_format = reader.string(header, "quant_format", "");
  PGOLF_CHECK(is_known_quant_format(info.quant_format),
              "{}: unsupported quant format '{}' (this pgolf reads '{}' and the entries' formats)",
              source, info.quant_format, kInt8Format);
  const Json& payload = reader.object(header, "payload", "");
  info.codec = header_codec(reader.string(payload, "codec", "payload"), source);
  const uint64_t level = reader.unsigned_int(payload, "level", "payload");
  PGOLF_CHECK(level <= 100, "{}: artifact header: payload.level {} is implausible", source, level);
  info.level = static_cast<int>(level);
  info.compressed_bytes = reader.unsigned_int(payload, "compressed_bytes", "payload");
  info.uncompressed_bytes = reader.unsigned_int(payload, "uncompressed_bytes", "payload");
  PGOLF_CHECK(info.uncompressed_bytes <= kMaxUncompressedBytes,
              "{}: artifact header: payload.uncompressed_bytes {} is implausibly large", source,
              info.uncompressed_bytes);
  info.compressed_crc32 = reader.crc(payload, "compressed_crc32", "payload");
  info.uncompressed_crc32 = reader.crc(payload, "uncompressed_crc32", "payload");
  return info;
}

// One tensor (or scale) in the payload, validated against the payload size.
struct Chunk {
  torch::ScalarType dtype = torch::kFloat32;
  std::vector<int64_t> shape;
  uint64_t offset = 0;
  uint64_t bytes = 0;
  int packed_bits = 0;  // > 0: int8 codes stored at this many bits each (v2)
};

// LQER factors' chunks (v3) in payload order.
struct LqerRow {
  bool asymmetric = true;
  int bits = 0;  // symmetric packing only
  Chunk a, a_scale, b, b_scale;
};

struct TableRow {
  std::string name;
  Kind kind = Kind::kPassthrough;
  torch::ScalarType orig_dtype = torch::kFloat32;
  int bits = 0;  // code width of the integer kinds
  Chunk data;
  std::optional<Chunk> scale;
  std::optional<LqerRow> lqer;
};

// Reads the chunk fields and checks that it starts at `cursor` and fits in the
// payload; advances `cursor`.
Chunk parse_chunk(const Json& json, const std::string& where, const std::string& label,
                  const HeaderReader& reader, const std::string& source, uint64_t payload_bytes,
                  uint64_t& cursor) {
  PGOLF_CHECK(json.is_object(), "{}: tensor table entry {} is not an object", source, label);
  Chunk chunk;
  const std::string dtype = reader.string(json, "dtype", where);
  const auto parsed = parse_dtype_name(dtype);
  PGOLF_CHECK(parsed.has_value(), "{}: tensor table entry {}: unknown dtype '{}'", source, label,
              dtype);
  chunk.dtype = *parsed;
  const Json& shape = reader.field(json, "shape", where);
  PGOLF_CHECK(shape.is_array(), "{}: tensor table entry {}: shape is not a list", source, label);
  // The product of the non-zero dims is bounded (torch checks it even for an
  // empty tensor); a zero dim then makes the tensor empty.
  uint64_t nonzero_product = 1;
  bool has_zero = false;
  for (const Json& dim : shape) {
    PGOLF_CHECK(dim.is_number_unsigned(), "{}: tensor table entry {}: bad shape {}", source, label,
                shape.dump());
    const uint64_t d = dim.get<uint64_t>();
    if (d == 0) {
      has_zero = true;
    } else {
      PGOLF_CHECK(nonzero_product <= kMaxUncompressedBytes / d,
                  "{}: tensor table entry {}: shape {} is too large", source, label, shape.dump());
      nonzero_product *= d;
    }
    chunk.shape.push_back(static_cast<int64_t>(d));
  }
  const uint64_t numel = has_zero ? 0 : nonzero_product;
  chunk.offset = reader.unsigned_int(json, "offset", where);
  chunk.bytes = reader.unsigned_int(json, "bytes", where);
  if (json.contains("packed_bits")) {
    const uint64_t bits = reader.unsigned_int(json, "packed_bits", where);
    PGOLF_CHECK(bits >= 1 && bits <= 8 && chunk.dtype == torch::kInt8,
                "{}: tensor table entry {}: packed_bits {} with dtype {}", source, label, bits,
                dtype);
    chunk.packed_bits = static_cast<int>(bits);
    PGOLF_CHECK(chunk.bytes == packed_bytes(numel, chunk.packed_bits),
                "{}: tensor table entry {}: {} bytes do not match {} codes of {} bits", source,
                label, chunk.bytes, numel, bits);
  } else {
    PGOLF_CHECK(chunk.bytes == numel * c10::elementSize(chunk.dtype),
                "{}: tensor table entry {}: {} bytes do not match dtype {} and shape {}", source,
                label, chunk.bytes, dtype, shape.dump());
  }
  PGOLF_CHECK(chunk.offset <= payload_bytes && chunk.bytes <= payload_bytes - chunk.offset,
              "{}: tensor table entry {} out of range: offset {} + {} bytes exceeds the {}-byte "
              "payload",
              source, label, chunk.offset, chunk.bytes, payload_bytes);
  PGOLF_CHECK(chunk.offset == cursor,
              "{}: tensor table entry {}: offset {} but the previous tensor ends at {}", source,
              label, chunk.offset, cursor);
  cursor += chunk.bytes;
  return chunk;
}

LqerRow parse_lqer(const Json& json, const std::string& where, const std::string& label,
                   const HeaderReader& reader, const std::string& source, uint64_t payload_bytes,
                   uint64_t& cursor) {
  PGOLF_CHECK(json.is_object(), "{}: tensor table entry {}: lqer is not an object", source, label);
  LqerRow row;
  const std::string packing = reader.string(json, "packing", where);
  PGOLF_CHECK(packing == "asymmetric" || packing == "symmetric",
              "{}: tensor table entry {}: unknown LQER packing '{}'", source, label, packing);
  row.asymmetric = packing == "asymmetric";
  if (!row.asymmetric) {
    row.bits = static_cast<int>(std::min<uint64_t>(reader.unsigned_int(json, "bits", where), 64));
  }
  const auto chunk = [&](const char* key) {
    PGOLF_CHECK(json.contains(key), "{}: artifact header: field '{}.{}' is missing", source, where,
                key);
    const Chunk c = parse_chunk(json[key], where + "." + key, label + " lqer " + key, reader,
                                source, payload_bytes, cursor);
    PGOLF_CHECK(c.packed_bits == 0, "{}: tensor table entry {}: packed LQER {}", source, label,
                key);
    return c;
  };
  row.a = chunk("a");
  row.a_scale = chunk("a_scale");
  row.b = chunk("b");
  row.b_scale = chunk("b_scale");
  return row;
}

// Each kind allows exactly the dtypes, scales, widths and packing the
// quantizers produce; only intN codes may be packed, and only at their width.
void check_kind(const TableRow& row, const std::string& source) {
  const bool orig_float = c10::isFloatingType(row.orig_dtype);
  const bool scale_unpacked = !row.scale || row.scale->packed_bits == 0;
  const bool unpacked = row.data.packed_bits == 0 && scale_unpacked;
  const bool intn_codes = row.scale && scale_unpacked && orig_float &&
                          row.data.dtype == torch::kInt8 && row.bits >= 2 && row.bits <= 7 &&
                          (row.data.packed_bits == 0 || row.data.packed_bits == row.bits);
  bool ok = false;
  switch (row.kind) {
    case Kind::kPassthrough:
      ok = unpacked && !row.scale && row.data.dtype == row.orig_dtype;
      break;
    case Kind::kKeptFloat:
      ok = unpacked && !row.scale && orig_float && c10::isFloatingType(row.data.dtype);
      break;
    case Kind::kInt8PerRow:
      ok = unpacked && row.bits == 8 && row.scale && orig_float && row.data.dtype == torch::kInt8 &&
           row.data.shape.size() == 2 && row.scale->dtype == torch::kFloat16 &&
           row.scale->shape == std::vector<int64_t>{row.data.shape[0]};
      break;
    case Kind::kInt8PerTensor:
      ok = unpacked && row.bits == 8 && row.scale && orig_float && row.data.dtype == torch::kInt8 &&
           row.scale->dtype == torch::kFloat32 && row.scale->shape.empty();
      break;
    case Kind::kIntNPerRow:
      ok = intn_codes && row.data.shape.size() == 2 && row.scale->dtype == torch::kFloat16 &&
           row.scale->shape == std::vector<int64_t>{row.data.shape[0]};
      break;
    case Kind::kIntNPerTensor:
      ok = intn_codes && row.scale->dtype == torch::kFloat16 && row.scale->shape.empty();
      break;
  }
  PGOLF_CHECK(ok, "{}: tensor table entry '{}': dtypes, shape or scale do not fit kind {}", source,
              row.name, kind_name(row.kind));
}

std::vector<TableRow> parse_table(const Json& header, const HeaderReader& reader,
                                  const std::string& source, uint64_t payload_bytes,
                                  uint32_t version) {
  const Json& tensors = reader.field(header, "tensors", "");
  PGOLF_CHECK(tensors.is_array(), "{}: artifact header: the tensor table is not a list", source);
  std::vector<TableRow> rows;
  std::set<std::string> names;
  uint64_t cursor = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Json& json = tensors[i];
    PGOLF_CHECK(json.is_object(), "{}: tensor table entry #{} is not an object", source, i);
    TableRow row;
    const std::string where = fmt::format("tensors[{}]", i);
    row.name = reader.string(json, "name", where);
    PGOLF_CHECK(names.insert(row.name).second, "{}: tensor table entry '{}' appears twice", source,
                row.name);
    const std::string label = fmt::format("'{}'", row.name);
    const std::string kind_text = reader.string(json, "kind", where);
    const auto kind = parse_kind_name(kind_text);
    PGOLF_CHECK(kind.has_value(), "{}: tensor table entry {}: unknown kind '{}'", source, label,
                kind_text);
    row.kind = *kind;
    PGOLF_CHECK(version >= 2 || !is_intn(row.kind),
                "{}: tensor table entry {}: kind {} needs artifact version 2", source, label,
                kind_text);
    if (is_integer_kind(row.kind)) {
      // Version 1 knew only int8 codes and did not record their width.
      row.bits =
          version >= 2
              ? static_cast<int>(std::min<uint64_t>(reader.unsigned_int(json, "bits", where), 64))
              : 8;
    }
    const std::string orig_text = reader.string(json, "orig_dtype", where);
    const auto orig = parse_dtype_name(orig_text);
    PGOLF_CHECK(orig.has_value(), "{}: tensor table entry {}: unknown orig_dtype '{}'", source,
                label, orig_text);
    row.orig_dtype = *orig;
    PGOLF_CHECK(version >= 2 || !json.contains("packed_bits"),
                "{}: tensor table entry {}: packed codes need artifact version 2", source, label);
    row.data = parse_chunk(json, where, label, reader, source, payload_bytes, cursor);
    if (json.contains("scale")) {
      row.scale = parse_chunk(json["scale"], where + ".scale", label + " scale", reader, source,
                              payload_bytes, cursor);
    }
    check_kind(row, source);
    if (json.contains("lqer")) {
      PGOLF_CHECK(version >= 3 && row.kind == Kind::kIntNPerRow,
                  "{}: tensor table entry {}: LQER factors need artifact version 3 and kind {}",
                  source, label, kind_name(Kind::kIntNPerRow));
      row.lqer =
          parse_lqer(json["lqer"], where + ".lqer", label, reader, source, payload_bytes, cursor);
    }
    rows.push_back(std::move(row));
  }
  PGOLF_CHECK(cursor == payload_bytes, "{}: the tensor table covers {} of the {} payload bytes",
              source, cursor, payload_bytes);
  return rows;
}

// The same matrices as code_matrices(table), from the validated table.
std::vector<CodeMatrix> code_matrices(const std::vector<TableRow>& rows) {
  std::vector<CodeMatrix> codes;
  for (const TableRow& row : rows) {
    if (!is_integer_kind(row.kind) || row.data.packed_bits > 0 || row.data.shape.size() != 2) {
      continue;
    }
    codes.push_back({row.name, row.data.shape[0], row.data.shape[1], row.data.offset});
  }
  return codes;
}

torch::Tensor chunk_tensor(const Chunk& chunk, std::string_view payload, const std::string& label,
                           const std::string& source) {
  if (chunk.packed_bits > 0) {
    try {
      return unpack_codes(payload.substr(chunk.offset, chunk.bytes), chunk.shape,
                          chunk.packed_bits);
    } catch (const Error& e) {
      fail("{}: tensor {}: {}", source, label, e.what());
    }
  }
  const char* src = payload.data() + chunk.offset;
  if (chunk.dtype == torch::kBool) {
    for (uint64_t i = 0; i < chunk.bytes; ++i) {
      PGOLF_CHECK(static_cast<unsigned char>(src[i]) <= 1,
                  "{}: tensor {}: BOOL byte {} is neither 0 nor 1", source, label, i);
    }
  }
  torch::Tensor tensor = torch::empty(chunk.shape, torch::TensorOptions().dtype(chunk.dtype));
  if (chunk.bytes > 0) std::memcpy(tensor.data_ptr(), src, chunk.bytes);
  return tensor;
}

}  // namespace

std::string encode_artifact(const QuantizedModel& model, const nlohmann::json& config, Codec codec,
                            int level) {
  auto [table, payload] = build_payload(model);
  const std::string compressed = compress_payload(payload, table, codec, level);
  return assemble(model, config, std::move(table), payload, codec, level, compressed);
}

std::string encode_artifact_smallest(const QuantizedModel& model, const nlohmann::json& config) {
  auto [table, payload] = build_payload(model);
  auto [codec, compressed] = compress_smallest(payload);
  if (lrzip_available()) {
    std::string grouped = compress_payload(payload, table, Codec::kPergroup, 9);
    if (grouped.size() < compressed.size()) {
      codec = Codec::kPergroup;
      compressed = std::move(grouped);
    }
  }
  return assemble(model, config, std::move(table), payload, codec, default_level(codec),
                  compressed);
}

int64_t write_artifact(const std::filesystem::path& path, const QuantizedModel& model,
                       const nlohmann::json& config, Codec codec, int level) {
  const std::string bytes = encode_artifact(model, config, codec, level);
  write_file_atomic(path, bytes);
  return static_cast<int64_t>(bytes.size());
}

LoadedArtifact decode_artifact(std::string_view bytes, const std::string& source) {
  PGOLF_CHECK(!bytes.empty(), "{}: not a pgolf artifact (empty file)", source);
  PGOLF_CHECK(bytes.size() >= kArtifactMagic.size() || !kArtifactMagic.starts_with(bytes),
              "{}: truncated: {} bytes, not even the magic", source, bytes.size());
  PGOLF_CHECK(bytes.substr(0, kArtifactMagic.size()) == kArtifactMagic,
              "{}: not a pgolf artifact (bad magic)", source);
  PGOLF_CHECK(bytes.size() >= kArtifactPreambleBytes,
              "{}: truncated: the preamble needs {} bytes, file has {}", source,
              kArtifactPreambleBytes, bytes.size());
  const auto version = read_le<uint32_t>(bytes, 8);
  PGOLF_CHECK(version >= kArtifactMinVersion && version <= kArtifactVersion,
              "{}: unsupported artifact version {} (this pgolf reads versions {} to {})", source,
              version, kArtifactMinVersion, kArtifactVersion);
  const auto header_crc = read_le<uint32_t>(bytes, 12);
  const auto header_len = read_le<uint64_t>(bytes, 16);
  const uint64_t after_preamble = bytes.size() - kArtifactPreambleBytes;
  PGOLF_CHECK(header_len <= after_preamble,
              "{}: truncated: header says {} header bytes, file has {} after the preamble", source,
              header_len, after_preamble);
  const std::string_view header_text = bytes.substr(kArtifactPreambleBytes, header_len);
  PGOLF_CHECK(crc32_of(header_text) == header_crc, "{}: header checksum mismatch (corrupt header)",
              source);

  Json header;
  try {
    header = Json::parse(header_text.begin(), header_text.end());
  } catch (const nlohmann::json::exception& e) {
    fail("{}: artifact header is not valid JSON ({})", source, e.what());
  }
  PGOLF_CHECK(header.is_object(), "{}: artifact header is not a JSON object", source);
  const HeaderReader reader(source);
  LoadedArtifact out;
  out.info = parse_info(header, reader, source);
  out.info.format_version = version;
  PGOLF_CHECK(version >= 3 || out.info.codec != Codec::kPergroup,
              "{}: the pergroup codec needs artifact version 3", source);
  out.info.header_bytes = header_len;
  out.config = reader.object(header, "config", "");

  const uint64_t payload_available = after_preamble - header_len;
  PGOLF_CHECK(out.info.compressed_bytes <= payload_available,
              "{}: truncated: header says {} payload bytes, file has {}", source,
              out.info.compressed_bytes, payload_available);
  PGOLF_CHECK(out.info.compressed_bytes == payload_available,
              "{}: {} unexpected trailing bytes after the payload", source,
              payload_available - out.info.compressed_bytes);
  out.info.file_bytes = bytes.size();
  const std::string_view compressed = bytes.substr(kArtifactPreambleBytes + header_len);
  PGOLF_CHECK(crc32_of(compressed) == out.info.compressed_crc32,
              "{}: payload checksum mismatch (compressed bytes are corrupt)", source);

  const std::vector<TableRow> rows =
      parse_table(header, reader, source, out.info.uncompressed_bytes, version);
  std::string payload;
  try {
    if (out.info.codec == Codec::kPergroup)
      out.info.pergroup_streams = pergroup_stream_sizes(compressed);
    payload =
        out.info.codec == Codec::kPergroup
            ? pergroup_decompress(compressed, code_matrices(rows), out.info.uncompressed_bytes)
            : decompress(compressed, out.info.codec, out.info.uncompressed_bytes);
  } catch (const Error& e) {
    fail("{}: payload: {}", source, e.what());
  }
  PGOLF_CHECK(crc32_of(payload) == out.info.uncompressed_crc32,
              "{}: payload checksum mismatch (decompressed bytes are corrupt)", source);

  out.model.format = out.info.quant_format;
  out.model.entries.reserve(rows.size());
  for (const TableRow& row : rows) {
    QuantizedEntry entry;
    entry.name = row.name;
    entry.kind = row.kind;
    entry.orig_dtype = row.orig_dtype;
    entry.bits = row.bits;
    entry.q = chunk_tensor(row.data, payload, "'" + row.name + "'", source);
    // Packed codes fit by construction; int8 containers of intN codes are checked.
    PGOLF_CHECK(!is_intn(row.kind) || row.data.packed_bits > 0 || codes_in_range(entry.q, row.bits),
                "{}: tensor '{}': a code does not fit in {} bits", source, row.name, row.bits);
    if (row.data.packed_bits > 0) out.model.storage = CodeStorage::kBitPacked;
    if (row.scale) entry.scale = chunk_tensor(*row.scale, payload, row.name + " scale", source);
    if (row.lqer) {
      const std::string label = row.name + " lqer";
      LowRankFactors& f = entry.lqer;
      f.asymmetric = row.lqer->asymmetric;
      if (!f.asymmetric) f.bits = row.lqer->bits;
      f.a = chunk_tensor(row.lqer->a, payload, label + " a", source);
      f.a_scale = chunk_tensor(row.lqer->a_scale, payload, label + " a scale", source);
      f.b = chunk_tensor(row.lqer->b, payload, label + " b", source);
      f.b_scale = chunk_tensor(row.lqer->b_scale, payload, label + " b scale", source);
      try {
        check_lqer_factors(f, entry.q.size(0), entry.q.size(1), "tensor '" + row.name + "'");
      } catch (const Error& e) {
        fail("{}: {}", source, e.what());
      }
    }
    out.model.entries.push_back(std::move(entry));
  }
  return out;
}

LoadedArtifact read_artifact(const std::filesystem::path& path) {
  return decode_artifact(read_file(path), path.string());
}

std::string SizeReport::describe() const {
  const int64_t margin = kCap - total_bytes;
  return fmt::format("model {} + code {} = {} bytes ({} {} the {} cap)", with_commas(model_bytes),
                     with_commas(code_bytes), with_commas(total_bytes),
                     with_commas(margin >= 0 ? margin : -margin), margin >= 0 ? "under" : "over",
                     with_commas(kCap));
}

SizeReport size_report(int64_t artifact_file_bytes, int64_t code_bytes) {
  return SizeReport{artifact_file_bytes, code_bytes, artifact_file_bytes + code_bytes};
}

SizeReport size_report(int64_t artifact_file_bytes) {
  return size_report(artifact_file_bytes, code_size().bytes);
}

std::string_view quant_label(std::string_view quant_format) {
  return quant_format == kInt8Format ? "int8" : "int6";
}

std::string roundtrip_label(std::string_view quant_format, Codec codec) {
  if (quant_format == kInt8Format) return fmt::format("final_int8_{}_roundtrip", codec_name(codec));
  return fmt::format("final_{}_roundtrip", quant_label(quant_format));
}

}  // namespace pgolf
