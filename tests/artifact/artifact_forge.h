// Helpers shared by the artifact tests: a version-1 file as its encoder wrote
// it, and forging a valid-looking file from a real one with an edited header.
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "artifact/compress.h"

namespace pgolf::testing {

// A version-1 artifact: int8 per row [2, 3] with fp16 scales (0.5, 0.25), a
// kept fp32 control vector and an int64 passthrough, codec none.
inline std::string version_one_artifact() {
  static const char kV1[] =
      "PGOLFART\x01\x00\x00\x00wO)\xe7\x8f\x02\x00\x00\x00\x00\x00\x00{\"config\":{\"see"
      "d\":1},\"created\":\"2025-01-01T00:00:00Z\",\"payload\":{\"codec\":\"none\",\"com"
      "pressed_bytes\":26,\"compressed_crc32\":2398354797,\"level\":0,\"uncompressed_byt"
      "es\":26,\"uncompressed_crc32\":2398354797},\"pgolf_version\":\"0.1.0\",\"quant_fo"
      "rmat\":\"int8_clean_per_row_v1\",\"tensors\":[{\"bytes\":6,\"dtype\":\"I8\",\"kin"
      "d\":\"int8_per_row\",\"name\":\"w\",\"offset\":0,\"orig_dtype\":\"F32\",\"scale\""
      ":{\"bytes\":4,\"dtype\":\"F16\",\"offset\":6,\"shape\":[2]},\"shape\":[2,3]},{\"b"
      "ytes\":8,\"dtype\":\"F32\",\"kind\":\"kept_float\",\"name\":\"blocks.0.attn_scale"
      "\",\"offset\":10,\"orig_dtype\":\"F32\",\"shape\":[2]},{\"bytes\":8,\"dtype\":\"I"
      "64\",\"kind\":\"passthrough\",\"name\":\"step\",\"offset\":18,\"orig_dtype\":\"I6"
      "4\",\"shape\":[1]}]}\x01\xfe\x7f\x81\x00\x05\x00"
      "8\x00"
      "4\x00\x00\xc0?\x00\x00\x00\xc0"
      "\x07\x00\x00\x00\x00\x00\x00\x00";
  return std::string(kV1, sizeof(kV1) - 1);
}

// `bytes`' magic and version, then `header` with a valid CRC, then `payload`.
inline std::string reassemble(const std::string& bytes, const nlohmann::json& header,
                              const std::string& payload) {
  const std::string text = header.dump();
  std::string out = bytes.substr(0, 12);
  const uint32_t crc = crc32_of(text);
  const uint64_t len = text.size();
  out.append(reinterpret_cast<const char*>(&crc), 4);
  out.append(reinterpret_cast<const char*>(&len), 8);
  return out + text + payload;
}

// `bytes` with its JSON header (and payload) rewritten by `edit` and the
// header CRC made valid again, so the reader's deeper checks are reached. For
// codec none the payload CRCs are recomputed too.
inline std::string forge(const std::string& bytes,
                         const std::function<void(nlohmann::json&, std::string&)>& edit) {
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data() + 16, 8);
  nlohmann::json header = nlohmann::json::parse(bytes.substr(24, header_len));
  std::string payload = bytes.substr(24 + header_len);
  edit(header, payload);
  if (header["payload"]["codec"] == "none") {
    header["payload"]["compressed_crc32"] = crc32_of(payload);
    header["payload"]["uncompressed_crc32"] = crc32_of(payload);
  }
  return reassemble(bytes, header, payload);
}

}  // namespace pgolf::testing
