// Tests for the artifact's version-2 encodings: every scheme's model, with
// intN codes in int8 containers or bit-packed, round-trips bit for bit;
// version-1 files still decode; damaged or forged v2 fields give one clear error.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>
#include <functional>
#include <string>

#include "artifact/artifact.h"
#include "common/error.h"
#include "quant/bitpack.h"
#include "quant/scheme.h"
#include "tests/artifact/artifact_forge.h"
#include "tests/quant/single_thread.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

class ArtifactPackedTest : public testing::SingleThreadTest {};

using Json = nlohmann::json;
using Kind = QuantizedEntry::Kind;

const Json kConfig = {{"model", {{"num_layers", 2}}}};

// Every intN shape: int6 and int5 per row (odd sizes, so packing ends
// mid-byte), an int5 per-tensor vector, one matrix large enough for #1406's
// int6, plus int8, kept and passthrough.
StateDict sample_dict() {
  torch::manual_seed(8);
  StateDict dict;
  dict.emplace_back("blocks.0.attn.c_q.weight", torch::randn({97, 103}) * 0.05);
  dict.emplace_back("blocks.0.mlp.fc.weight", torch::randn({101, 99}) * 0.05);
  dict.emplace_back("blocks.0.mlp.gain", torch::randn({9'001}));
  dict.emplace_back("blocks.1.attn.c_k.weight",
                    torch::randn({257, 263}) * 0.05);  // #1406: > 65,536
  dict.emplace_back("ve_shared.embed.weight", torch::randn({90, 100}).to(torch::kBFloat16));
  dict.emplace_back("blocks.0.attn_scale", torch::rand({64}));
  dict.emplace_back("step", torch::tensor({3}, torch::kInt64));
  return dict;
}

QuantizedModel sample_model(CodeStorage storage, const char* scheme = "pr461") {
  QuantScheme s = quant_scheme(scheme);
  s.storage = storage;
  return quantize_model(sample_dict(), s);
}

// As in test_artifact.cpp: rewrite header and payload with a valid header CRC
// and (codec none) valid payload CRCs, so only the field under test is wrong.
std::string forge_none(const std::string& bytes,
                       const std::function<void(Json&, std::string&)>& edit) {
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data() + 16, 8);
  Json header = Json::parse(bytes.substr(24, header_len));
  std::string payload = bytes.substr(24 + header_len);
  edit(header, payload);
  header["payload"]["compressed_crc32"] = crc32_of(payload);
  header["payload"]["uncompressed_crc32"] = crc32_of(payload);
  header["payload"]["compressed_bytes"] = payload.size();
  header["payload"]["uncompressed_bytes"] = payload.size();
  return testing::reassemble(bytes, header, payload);
}

Json& row_named(Json& header, const std::string& name) {
  for (Json& row : header["tensors"]) {
    if (row["name"] == name) return row;
  }
  throw std::runtime_error("no row " + name);
}

TEST_F(ArtifactPackedTest, EveryFormatRoundTripsBitForBit) {
  for (const char* scheme : {"int8", "pr1406", "pr461", "pr456", "pr562"}) {
    const QuantizedModel quantized = sample_model(CodeStorage::kInt8Container, scheme);
    for (const CodeStorage storage : {CodeStorage::kInt8Container, CodeStorage::kBitPacked}) {
      for (const Codec codec : {Codec::kNone, Codec::kZstd}) {
        SCOPED_TRACE(std::string(scheme) + (storage == CodeStorage::kBitPacked ? " packed" : "") +
                     " " + std::string(codec_name(codec)));
        QuantizedModel model = quantized;
        model.storage = storage;
        const LoadedArtifact loaded = decode_artifact(encode_artifact(model, kConfig, codec, 3));
        EXPECT_EQ(loaded.info.format_version, kArtifactVersion);
        EXPECT_EQ(loaded.info.quant_format, model.format);
        const bool any_intn = model.entries[3].kind == Kind::kIntNPerRow;
        EXPECT_EQ(loaded.model.storage, any_intn ? storage : CodeStorage::kInt8Container);
        ASSERT_EQ(loaded.model.entries.size(), model.entries.size());
        const StateDict direct = dequantize_model(model);
        const StateDict restored = dequantize_model(loaded.model);
        for (size_t i = 0; i < model.entries.size(); ++i) {
          const QuantizedEntry& a = model.entries[i];
          const QuantizedEntry& b = loaded.model.entries[i];
          SCOPED_TRACE(a.name);
          EXPECT_EQ(a.kind, b.kind);
          EXPECT_EQ(a.bits, b.bits);
          EXPECT_EQ(a.orig_dtype, b.orig_dtype);
          EXPECT_TRUE(torch::equal(a.q, b.q));
          EXPECT_EQ(a.scale.defined(), b.scale.defined());
          if (a.scale.defined()) {
            EXPECT_TRUE(torch::equal(a.scale, b.scale));
          }
          EXPECT_EQ(restored[i].second.scalar_type(), direct[i].second.scalar_type());
          EXPECT_TRUE(torch::equal(restored[i].second, direct[i].second));
        }
      }
    }
  }
}

TEST_F(ArtifactPackedTest, PackedPayloadIsSmaller) {
  const QuantizedModel container = sample_model(CodeStorage::kInt8Container);
  const QuantizedModel packed = sample_model(CodeStorage::kBitPacked);
  const auto payload = [](const QuantizedModel& m) {
    return decode_artifact(encode_artifact(m, kConfig, Codec::kNone, 0)).info.uncompressed_bytes;
  };
  // int6 97x103 and 257x263, int5 101x99 and 9,001: 3/4 and 5/8 of a byte per code.
  const uint64_t saved = (97 * 103 - packed_bytes(97 * 103, 6)) +
                         (257 * 263 - packed_bytes(257 * 263, 6)) +
                         (101 * 99 - packed_bytes(101 * 99, 5)) + (9'001 - packed_bytes(9'001, 5));
  EXPECT_EQ(payload(container) - payload(packed), saved);
}

TEST_F(ArtifactPackedTest, VersionOneFilesStillDecode) {
  // Written by the version-1 encoder's layout: int8 per row [2, 3] with fp16
  // scales (0.5, 0.25), a kept fp32 control vector and an int64 passthrough.
  const LoadedArtifact v1 = decode_artifact(testing::version_one_artifact(), "v1.pgolf");
  EXPECT_EQ(v1.info.format_version, 1u);
  ASSERT_EQ(v1.model.entries.size(), 3u);
  EXPECT_EQ(v1.model.entries[0].kind, Kind::kInt8PerRow);
  EXPECT_EQ(v1.model.entries[0].bits, 8);
  const StateDict d = dequantize_model(v1.model);
  EXPECT_TRUE(torch::equal(
      d[0].second, torch::tensor({0.5f, -1.f, 63.5f, -31.75f, 0.f, 1.25f}).reshape({2, 3})));
  EXPECT_TRUE(torch::equal(d[1].second, torch::tensor({1.5f, -2.f})));
  EXPECT_EQ(d[2].second.item<int64_t>(), 7);
}

TEST_F(ArtifactPackedTest, VersionTwoFieldsAreNotAcceptedInVersionOne) {
  const std::string good =
      encode_artifact(sample_model(CodeStorage::kBitPacked), kConfig, Codec::kNone, 0);
  std::string v1 = good;
  v1[8] = 1;
  EXPECT_PGOLF_ERROR(decode_artifact(v1), "kind intn_per_row needs artifact version 2");
  const std::string int8_packed = forge_none(
      encode_artifact(sample_model(CodeStorage::kBitPacked, "int8"), kConfig, Codec::kNone, 0),
      [](Json& h, std::string&) { row_named(h, "step")["packed_bits"] = 8; });
  std::string old = int8_packed;
  old[8] = 1;
  EXPECT_PGOLF_ERROR(decode_artifact(old), "packed codes need artifact version 2");
}

TEST_F(ArtifactPackedTest, ForgedVersionTwoFields) {
  for (const CodeStorage storage : {CodeStorage::kInt8Container, CodeStorage::kBitPacked}) {
    const std::string good = encode_artifact(sample_model(storage), kConfig, Codec::kNone, 0);
    ASSERT_NO_THROW(decode_artifact(forge_none(good, [](Json&, std::string&) {})));
    struct Case {
      std::function<void(Json&, std::string&)> edit;
      std::string needle;
    };
    std::vector<Case> cases = {
        {[](Json& h, std::string&) { row_named(h, "blocks.0.attn.c_q.weight").erase("bits"); },
         "field 'tensors[0].bits' is missing"},
        {[](Json& h, std::string&) { row_named(h, "blocks.0.attn.c_q.weight")["bits"] = 9; },
         "do not fit kind intn_per_row"},
        {[](Json& h, std::string&) { row_named(h, "blocks.0.attn.c_q.weight")["bits"] = -6; },
         "field 'tensors[0].bits' is not a non-negative integer"},
        {[](Json& h, std::string&) { row_named(h, "ve_shared.embed.weight")["bits"] = 6; },
         "do not fit kind int8_per_row"},
        {[](Json& h, std::string&) { row_named(h, "blocks.0.mlp.gain")["kind"] = "intn_per_row"; },
         "do not fit kind intn_per_row"},
        {[](Json& h, std::string&) {
           row_named(h, "blocks.0.attn_scale")["kind"] = "intn_per_tensor";
           row_named(h, "blocks.0.attn_scale")["bits"] = 6;
         },
         "do not fit kind intn_per_tensor"},
    };
    if (storage == CodeStorage::kBitPacked) {
      cases.push_back({[](Json& h, std::string&) {
                         row_named(h, "blocks.0.attn.c_q.weight")["packed_bits"] = 5;
                       },
                       "do not match 9991 codes of 5 bits"});
      cases.push_back({[](Json& h, std::string&) {
                         row_named(h, "blocks.0.attn.c_q.weight")["packed_bits"] = 0;
                       },
                       "packed_bits 0 with dtype I8"});
      cases.push_back({[](Json& h, std::string&) {
                         Json& row = row_named(h, "blocks.0.attn.c_q.weight");
                         row["bytes"] = row["bytes"].get<uint64_t>() + 1;
                       },
                       "do not match 9991 codes of 6 bits"});
      // A packed int5 tensor claiming 6 bits: sizes agree only by accident, never here.
      cases.push_back({[](Json& h, std::string&) {
                         Json& row = row_named(h, "blocks.0.mlp.fc.weight");
                         row["bits"] = 6;
                       },
                       "do not fit kind intn_per_row"});
      // Nonzero padding bits of the last packed byte (97 * 103 * 6 bits = 7493.25 bytes).
      cases.push_back({[](Json& h, std::string& payload) {
                         const Json& row = row_named(h, "blocks.0.attn.c_q.weight");
                         const size_t last =
                             row["offset"].get<size_t>() + row["bytes"].get<size_t>() - 1;
                         payload[last] = static_cast<char>(payload[last] | 0x80);
                       },
                       "padding bits of the last byte are not zero"});
    } else {
      cases.push_back({[](Json& h, std::string&) {
                         row_named(h, "blocks.0.attn.c_q.weight")["packed_bits"] = 6;
                       },
                       "do not match 9991 codes of 6 bits"});
      // An int8 container holding a code outside the int5 range.
      cases.push_back({[](Json& h, std::string& payload) {
                         const Json& row = row_named(h, "blocks.0.mlp.fc.weight");
                         payload[row["offset"].get<size_t>() + 5] = 16;
                       },
                       "a code does not fit in 5 bits"});
    }
    // Scales are never packed; float tensors neither.
    cases.push_back(
        {[](Json& h, std::string&) { row_named(h, "blocks.0.attn_scale")["packed_bits"] = 4; },
         "packed_bits 4 with dtype F16"});
    for (const Case& c : cases) {
      SCOPED_TRACE(c.needle);
      EXPECT_PGOLF_ERROR(decode_artifact(forge_none(good, c.edit), "forged.pgolf"), c.needle);
    }
  }
}

TEST_F(ArtifactPackedTest, TruncatedAndFlippedPackedArtifacts) {
  const std::string good =
      encode_artifact(sample_model(CodeStorage::kBitPacked), kConfig, Codec::kLzma, 9);
  uint64_t header_len = 0;
  std::memcpy(&header_len, good.data() + 16, 8);
  const size_t payload_start = 24 + header_len;
  for (const size_t keep : {size_t{10}, size_t{24 + header_len / 3}, payload_start,
                            payload_start + 7, good.size() - 1}) {
    SCOPED_TRACE(keep);
    EXPECT_PGOLF_ERROR(decode_artifact(good.substr(0, keep)), "truncated");
  }
  std::string bad = good;
  bad[payload_start + 20] ^= 0x01;
  EXPECT_PGOLF_ERROR(decode_artifact(bad), "payload checksum mismatch");
}

TEST_F(ArtifactPackedTest, EncoderRejectsCodesThatDoNotFit) {
  for (const CodeStorage storage : {CodeStorage::kInt8Container, CodeStorage::kBitPacked}) {
    QuantizedModel model = sample_model(storage);
    model.entries[1].q = model.entries[1].q.clone();
    model.entries[1].q.view(-1)[3] = 16;  // int5 holds -16..15
    EXPECT_PGOLF_ERROR(encode_artifact(model, kConfig, Codec::kNone, 0), "does not fit in 5 bits");
    model = sample_model(storage);
    model.entries[0].bits = 8;
    EXPECT_PGOLF_ERROR(encode_artifact(model, kConfig, Codec::kNone, 0),
                       "8 bits do not fit kind intn_per_row");
  }
}

}  // namespace
}  // namespace pgolf
