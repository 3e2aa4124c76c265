// safetensors reading and writing: the exchange format of the golden fixtures
// and of fp checkpoints. Layout: u64 little-endian header length N, N bytes of
// JSON header (padded with spaces so the data starts 8-byte aligned), then the
// raw little-endian row-major tensor data. The reader validates everything a
// corrupt or foreign file could get wrong before touching the data.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "io/state_dict.h"

namespace pgolf {

using SafetensorsMetadata = std::map<std::string, std::string>;

// Reads every tensor, in the order of its data in the file (the order it was
// written). When `metadata` is given, it receives the "__metadata__" strings.
StateDict read_safetensors(const std::filesystem::path& path,
                           SafetensorsMetadata* metadata = nullptr);

// Same, from bytes already in memory; `source` names them in error messages.
StateDict parse_safetensors(std::string_view bytes, const std::string& source,
                            SafetensorsMetadata* metadata = nullptr);

// Writes `dict` in its order (atomically). Tensors are copied to CPU and made
// contiguous; names must be unique and not "__metadata__".
void write_safetensors(const std::filesystem::path& path, const StateDict& dict,
                       const SafetensorsMetadata& metadata = {});

// The bytes write_safetensors would write.
std::string safetensors_bytes(const StateDict& dict, const SafetensorsMetadata& metadata = {});

// The safetensors dtype names ("F32", "BF16", "I8", ...) for the dtypes pgolf
// exchanges: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL. Other dtypes are errors.
std::string_view dtype_name(torch::ScalarType dtype);
// The dtype for a name above, or std::nullopt for anything else.
std::optional<torch::ScalarType> parse_dtype_name(std::string_view name);

}  // namespace pgolf
