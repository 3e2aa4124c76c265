// safetensors reader and writer (see safetensors.h). The reader trusts nothing:
// header length, JSON, dtypes, shapes and offsets are all checked against the
// real file size before any tensor is allocated, so a corrupt file gives one
// clear error and never an oversized allocation or an out-of-bounds read.
#include "io/safetensors.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>
#include <vector>

#include "common/error.h"
#include "common/fs.h"

namespace pgolf {
namespace {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; pgolf copies it as-is");

using OrderedJson = nlohmann::ordered_json;

constexpr std::string_view kMetadataKey = "__metadata__";
// The Rust reference implementation refuses headers above 100 MB; so do we,
// which also bounds the JSON parser's memory on a hostile file.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct DtypeEntry {
  std::string_view name;
  torch::ScalarType dtype;
};

constexpr std::array<DtypeEntry, 10> kDtypes = {{
    {"F64", torch::kFloat64},
    {"F32", torch::kFloat32},
    {"F16", torch::kFloat16},
    {"BF16", torch::kBFloat16},
    {"I64", torch::kInt64},
    {"I32", torch::kInt32},
    {"I16", torch::kInt16},
    {"I8", torch::kInt8},
    {"U8", torch::kUInt8},
    {"BOOL", torch::kBool},
}};

std::optional<std::string_view> find_dtype_name(torch::ScalarType dtype) {
  for (const auto& entry : kDtypes) {
    if (entry.dtype == dtype) return entry.name;
  }
  return std::nullopt;
}

// One header entry, validated but not yet read.
struct EntryInfo {
  std::string name;
  torch::ScalarType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0;
  uint64_t end = 0;
  uint64_t nbytes = 0;  // numel x itemsize, checked for overflow
};

uint64_t json_unsigned(const OrderedJson& value, const std::string& source, const std::string& name,
                       const char* what) {
  PGOLF_CHECK(value.is_number_unsigned(), "{}: tensor '{}': {} must be non-negative integers",
              source, name, what);
  return value.get<uint64_t>();
}

EntryInfo parse_entry(const std::string& source, const std::string& name,
                      const OrderedJson& value) {
  PGOLF_CHECK(value.is_object(), "{}: tensor '{}': header entry is not an object", source, name);
  EntryInfo entry;
  entry.name = name;

  const auto dtype_it = value.find("dtype");
  PGOLF_CHECK(dtype_it != value.end() && dtype_it->is_string(), "{}: tensor '{}': missing dtype",
              source, name);
  const auto dtype = parse_dtype_name(dtype_it->get<std::string>());
  PGOLF_CHECK(dtype.has_value(), "{}: tensor '{}': unsupported dtype '{}'", source, name,
              dtype_it->get<std::string>());
  entry.dtype = *dtype;

  const auto shape_it = value.find("shape");
  PGOLF_CHECK(shape_it != value.end() && shape_it->is_array(), "{}: tensor '{}': missing shape",
              source, name);
  // The product of the non-zero dims must fit (torch checks it even for an
  // empty tensor); a zero dim then makes the tensor empty.
  const uint64_t itemsize = c10::elementSize(entry.dtype);
  const uint64_t limit = static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / itemsize;
  uint64_t nonzero_product = 1;
  bool has_zero = false;
  for (const auto& dim : *shape_it) {
    const uint64_t d = json_unsigned(dim, source, name, "shape dims");
    if (d == 0) {
      has_zero = true;
    } else {
      PGOLF_CHECK(nonzero_product <= limit / d, "{}: tensor '{}': shape is impossibly large",
                  source, name);
      nonzero_product *= d;
    }
    entry.shape.push_back(static_cast<int64_t>(d));
  }
  const uint64_t numel = has_zero ? 0 : nonzero_product;
  entry.nbytes = numel * itemsize;

  const auto offsets_it = value.find("data_offsets");
  PGOLF_CHECK(offsets_it != value.end() && offsets_it->is_array() && offsets_it->size() == 2,
              "{}: tensor '{}': data_offsets must be [begin, end]", source, name);
  entry.begin = json_unsigned((*offsets_it)[0], source, name, "data_offsets");
  entry.end = json_unsigned((*offsets_it)[1], source, name, "data_offsets");
  PGOLF_CHECK(entry.begin <= entry.end, "{}: tensor '{}': data_offsets [{}, {}] are reversed",
              source, name, entry.begin, entry.end);
  PGOLF_CHECK(entry.end - entry.begin == entry.nbytes,
              "{}: tensor '{}': data_offsets span {} bytes but dtype {} x shape needs {}", source,
              name, entry.end - entry.begin, dtype_it->get<std::string>(), entry.nbytes);
  return entry;
}

void parse_metadata(const std::string& source, const OrderedJson& value,
                    SafetensorsMetadata* metadata) {
  if (value.is_null()) return;
  PGOLF_CHECK(value.is_object(), "{}: __metadata__ is not an object", source);
  for (const auto& [key, item] : value.items()) {
    PGOLF_CHECK(item.is_string(), "{}: __metadata__ value '{}' is not a string", source, key);
    if (metadata != nullptr) (*metadata)[key] = item.get<std::string>();
  }
}

OrderedJson parse_header_json(std::string_view text, const std::string& source) {
  try {
    OrderedJson header = OrderedJson::parse(text.begin(), text.end());
    PGOLF_CHECK(header.is_object(), "{}: safetensors header is not a JSON object", source);
    return header;
  } catch (const nlohmann::json::exception& e) {
    fail("{}: safetensors header is not valid JSON ({})", source, e.what());
  }
}

torch::Tensor read_tensor(const EntryInfo& entry, std::string_view data,
                          const std::string& source) {
  torch::Tensor tensor = torch::empty(entry.shape, torch::TensorOptions().dtype(entry.dtype));
  const char* src = data.data() + entry.begin;
  if (entry.dtype == torch::kBool) {
    // Any byte other than 0/1 in a bool tensor is undefined behaviour in torch.
    for (uint64_t i = 0; i < entry.nbytes; ++i) {
      PGOLF_CHECK(static_cast<unsigned char>(src[i]) <= 1,
                  "{}: tensor '{}': BOOL byte {} is neither 0 nor 1", source, entry.name, i);
    }
  }
  if (entry.nbytes > 0) std::memcpy(tensor.data_ptr(), src, entry.nbytes);
  return tensor;
}

}  // namespace

std::string_view dtype_name(torch::ScalarType dtype) {
  const auto name = find_dtype_name(dtype);
  PGOLF_CHECK(name.has_value(), "dtype {} has no safetensors name pgolf supports",
              c10::toString(dtype));
  return *name;
}

std::optional<torch::ScalarType> parse_dtype_name(std::string_view name) {
  for (const auto& entry : kDtypes) {
    if (entry.name == name) return entry.dtype;
  }
  return std::nullopt;
}

StateDict parse_safetensors(std::string_view bytes, const std::string& source,
                            SafetensorsMetadata* metadata) {
  PGOLF_CHECK(bytes.size() >= 8, "{}: too short for a safetensors file ({} bytes)", source,
              bytes.size());
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  PGOLF_CHECK(header_len <= bytes.size() - 8,
              "{}: truncated: header length {} but only {} bytes follow", source, header_len,
              bytes.size() - 8);
  PGOLF_CHECK(header_len <= kMaxHeaderBytes, "{}: header length {} is too large", source,
              header_len);
  const OrderedJson header = parse_header_json(bytes.substr(8, header_len), source);
  const std::string_view data = bytes.substr(8 + header_len);

  std::vector<EntryInfo> entries;
  for (const auto& [key, value] : header.items()) {
    if (key == kMetadataKey) {
      parse_metadata(source, value, metadata);
    } else {
      entries.push_back(parse_entry(source, key, value));
    }
  }
  // The on-disk data order is the written order; a stable sort keeps the JSON
  // order among empty tensors that share an offset.
  std::stable_sort(entries.begin(), entries.end(),
                   [](const EntryInfo& a, const EntryInfo& b) { return a.begin < b.begin; });
  uint64_t expected = 0;
  for (const auto& entry : entries) {
    PGOLF_CHECK(entry.begin == expected,
                "{}: tensor '{}': data_offsets [{}, {}] overlap or leave a gap (expected begin {})",
                source, entry.name, entry.begin, entry.end, expected);
    PGOLF_CHECK(entry.end <= data.size(),
                "{}: truncated: tensor '{}' ends at data byte {} but the data has {} bytes", source,
                entry.name, entry.end, data.size());
    expected = entry.end;
  }
  PGOLF_CHECK(expected == data.size(), "{}: {} bytes of data after the last tensor", source,
              data.size() - expected);

  StateDict dict;
  dict.reserve(entries.size());
  for (const auto& entry : entries) dict.emplace_back(entry.name, read_tensor(entry, data, source));
  return dict;
}

StateDict read_safetensors(const std::filesystem::path& path, SafetensorsMetadata* metadata) {
  return parse_safetensors(read_file(path), path.string(), metadata);
}

std::string safetensors_bytes(const StateDict& dict, const SafetensorsMetadata& metadata) {
  OrderedJson header = OrderedJson::object();
  if (!metadata.empty()) {
    OrderedJson meta = OrderedJson::object();
    for (const auto& [key, value] : metadata) meta[key] = value;
    header[std::string(kMetadataKey)] = std::move(meta);
  }
  std::vector<torch::Tensor> tensors;
  tensors.reserve(dict.size());
  std::set<std::string> seen;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : dict) {
    PGOLF_CHECK(name != kMetadataKey, "safetensors: '{}' is reserved and cannot name a tensor",
                name);
    PGOLF_CHECK(seen.insert(name).second, "safetensors: tensor name '{}' appears twice", name);
    PGOLF_CHECK(tensor.defined(), "safetensors: tensor '{}' is undefined", name);
    const auto dtype = find_dtype_name(tensor.scalar_type());
    PGOLF_CHECK(dtype.has_value(), "safetensors: tensor '{}' has unsupported dtype {}", name,
                c10::toString(tensor.scalar_type()));
    torch::Tensor cpu = tensor.detach().to(torch::kCPU).contiguous();
    const uint64_t nbytes = cpu.nbytes();
    header[name] = {{"dtype", std::string(*dtype)},
                    {"shape", cpu.sizes().vec()},
                    {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    tensors.push_back(std::move(cpu));
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    fail("safetensors: cannot encode header ({})", e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // data starts 8-byte aligned

  std::string out;
  out.reserve(8 + text.size() + offset);
  const uint64_t header_len = text.size();
  out.append(reinterpret_cast<const char*>(&header_len), 8);
  out += text;
  for (const auto& t : tensors) {
    if (t.nbytes() > 0) out.append(static_cast<const char*>(t.data_ptr()), t.nbytes());
  }
  return out;
}

void write_safetensors(const std::filesystem::path& path, const StateDict& dict,
                       const SafetensorsMetadata& metadata) {
  write_file_atomic(path, safetensors_bytes(dict, metadata));
}

}  // namespace pgolf
