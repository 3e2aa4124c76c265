// Tests for artifact/artifact: bit-exact round trips for every codec, one
// clear error for each way a file can be damaged or forged, and the size
// report's arithmetic.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>
#include <functional>
#include <random>
#include <string>

#include "artifact/artifact.h"
#include "common/code_size.h"
#include "common/error.h"
#include "common/fs.h"
#include "tests/artifact/artifact_forge.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

using Json = nlohmann::json;
using Kind = QuantizedEntry::Kind;
using testing::ScratchDir;

// Every entry kind, with int8 tensors just over the keep-float threshold.
QuantizedModel sample_model() {
  torch::manual_seed(5);
  StateDict dict;
  dict.emplace_back("tok_emb.weight", torch::randn({300, 256}) * 0.05);
  dict.emplace_back("blocks.0.attn_scale", torch::rand({64}));
  dict.emplace_back("blocks.0.attn.c_q.weight", torch::randn({64, 64}).to(torch::kBFloat16));
  dict.emplace_back("conv", torch::randn({3, 150, 150}));
  dict.emplace_back("step", torch::tensor({7}, torch::kInt64));
  dict.emplace_back("mask", torch::tensor({true, false, true}));
  dict.emplace_back("empty", torch::zeros({0, 4}));
  return quantize_int8(dict);
}

const Json kConfig = {{"model", {{"num_layers", 4}, {"model_dim", 128}}}, {"seed", 1337}};

void expect_same_model(const QuantizedModel& a, const QuantizedModel& b) {
  EXPECT_EQ(a.format, b.format);
  ASSERT_EQ(a.entries.size(), b.entries.size());
  for (size_t i = 0; i < a.entries.size(); ++i) {
    const auto& x = a.entries[i];
    const auto& y = b.entries[i];
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.kind, y.kind) << x.name;
    EXPECT_EQ(x.orig_dtype, y.orig_dtype) << x.name;
    EXPECT_EQ(x.q.scalar_type(), y.q.scalar_type()) << x.name;
    EXPECT_TRUE(torch::equal(x.q, y.q)) << x.name;
    EXPECT_EQ(x.scale.defined(), y.scale.defined()) << x.name;
    if (x.scale.defined() && y.scale.defined()) {
      EXPECT_EQ(x.scale.scalar_type(), y.scale.scalar_type()) << x.name;
      EXPECT_TRUE(torch::equal(x.scale, y.scale)) << x.name;
    }
  }
}

// Splits an artifact into its header JSON and payload, lets `edit` change
// them, and reassembles it with a correct header CRC (forged, not damaged).
std::string forge(const std::string& bytes, const std::function<void(Json&, std::string&)>& edit) {
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data() + 16, 8);
  Json header = Json::parse(bytes.substr(24, header_len));
  std::string payload = bytes.substr(24 + header_len);
  edit(header, payload);
  return testing::reassemble(bytes, header, payload);
}

// As forge(), with the payload CRCs recomputed too (codec none only).
std::string forge_none(const std::string& bytes,
                       const std::function<void(Json&, std::string&)>& edit) {
  return forge(bytes, [&](Json& header, std::string& payload) {
    edit(header, payload);
    header["payload"]["compressed_crc32"] = crc32_of(payload);
    header["payload"]["uncompressed_crc32"] = crc32_of(payload);
  });
}

TEST(ArtifactTest, RoundTripIsBitExactForEveryCodec) {
  const QuantizedModel model = sample_model();
  for (const Codec codec :
       {Codec::kNone, Codec::kZlib, Codec::kZstd, Codec::kLzma, Codec::kBrotli}) {
    SCOPED_TRACE(std::string(codec_name(codec)));
    const std::string bytes = encode_artifact(model, kConfig, codec, default_level(codec));
    EXPECT_EQ(bytes.substr(0, 8), "PGOLFART");
    const LoadedArtifact loaded = decode_artifact(bytes);
    expect_same_model(model, loaded.model);
    EXPECT_EQ(loaded.config, kConfig);
    EXPECT_EQ(loaded.info.format_version, kArtifactVersion);
    EXPECT_EQ(loaded.info.codec, codec);
    EXPECT_EQ(loaded.info.level, default_level(codec));
    EXPECT_EQ(loaded.info.quant_format, "int8_clean_per_row_v1");
    EXPECT_EQ(loaded.info.pgolf_version, kPgolfVersion);
    EXPECT_EQ(loaded.info.created.size(), 20u);  // 2025-01-02T03:04:05Z
    EXPECT_EQ(loaded.info.file_bytes, bytes.size());
    EXPECT_EQ(loaded.info.file_bytes, 24 + loaded.info.header_bytes + loaded.info.compressed_bytes);
    // Dequantized weights agree exactly too.
    const StateDict a = dequantize(model);
    const StateDict b = dequantize(loaded.model);
    for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i].second, b[i].second));
  }
}

TEST(ArtifactTest, WriteAndReadFile) {
  ScratchDir dir;
  const QuantizedModel model = sample_model();
  const int64_t size = write_artifact(dir / "m.pgolf", model, kConfig, Codec::kZlib, 9);
  EXPECT_EQ(size, static_cast<int64_t>(std::filesystem::file_size(dir / "m.pgolf")));
  const LoadedArtifact loaded = read_artifact(dir / "m.pgolf");
  expect_same_model(model, loaded.model);
  EXPECT_PGOLF_ERROR(read_artifact(dir / "absent.pgolf"), "absent.pgolf");
}

TEST(ArtifactTest, SmallestCodecRoundTrips) {
  const QuantizedModel model = sample_model();
  const std::string bytes = encode_artifact_smallest(model, kConfig);
  const LoadedArtifact loaded = decode_artifact(bytes);
  EXPECT_NE(loaded.info.codec, Codec::kNone);
  for (const Codec codec : {Codec::kZlib, Codec::kZstd, Codec::kLzma, Codec::kBrotli}) {
    EXPECT_LE(bytes.size(), encode_artifact(model, kConfig, codec, default_level(codec)).size());
  }
  expect_same_model(model, loaded.model);
}

TEST(ArtifactTest, ForeignAndEmptyFiles) {
  EXPECT_PGOLF_ERROR(decode_artifact("", "f"), "f: not a pgolf artifact (empty file)");
  std::mt19937 rng(3);
  std::string random(4096, '\0');
  for (auto& c : random) c = static_cast<char>(rng());
  EXPECT_PGOLF_ERROR(decode_artifact(random, "f"), "not a pgolf artifact (bad magic)");
  // A safetensors file is not an artifact either.
  EXPECT_PGOLF_ERROR(decode_artifact(std::string("\x10\0\0\0\0\0\0\0{}              ", 24)),
                     "bad magic");
}

TEST(ArtifactTest, FlippedMagicAndBadVersion) {
  const std::string good = encode_artifact(sample_model(), kConfig, Codec::kZlib, 9);
  std::string bad = good;
  bad[3] ^= 0x20;
  EXPECT_PGOLF_ERROR(decode_artifact(bad), "not a pgolf artifact (bad magic)");
  bad = good;
  bad[8] = 4;
  EXPECT_PGOLF_ERROR(decode_artifact(bad), "unsupported artifact version 4");
  bad[8] = 0;
  EXPECT_PGOLF_ERROR(decode_artifact(bad), "unsupported artifact version 0");
}

TEST(ArtifactTest, TruncatedAtEveryStage) {
  const std::string good = encode_artifact(sample_model(), kConfig, Codec::kZstd, 22);
  uint64_t header_len = 0;
  std::memcpy(&header_len, good.data() + 16, 8);
  const size_t payload_start = 24 + header_len;
  for (const size_t keep :
       {size_t{1}, size_t{4}, size_t{8}, size_t{12}, size_t{20}, size_t{24},
        size_t{24 + header_len / 2}, payload_start - 1, payload_start, payload_start + 10,
        good.size() / 2 + payload_start / 2, good.size() - 1}) {
    SCOPED_TRACE(keep);
    EXPECT_PGOLF_ERROR(decode_artifact(good.substr(0, keep)), "truncated");
  }
  EXPECT_PGOLF_ERROR(decode_artifact(good + "extra"), "5 unexpected trailing bytes");
}

TEST(ArtifactTest, FlippedBytesFailChecksums) {
  const std::string good = encode_artifact(sample_model(), kConfig, Codec::kZstd, 22);
  uint64_t header_len = 0;
  std::memcpy(&header_len, good.data() + 16, 8);
  for (const size_t pos : {24 + header_len, 24 + header_len + 100, good.size() - 1}) {
    std::string bad = good;
    bad[pos] ^= 0x04;
    SCOPED_TRACE(pos);
    EXPECT_PGOLF_ERROR(decode_artifact(bad), "payload checksum mismatch");
  }
  for (const size_t pos : {size_t{12}, size_t{24}, size_t{24 + header_len / 2}}) {
    std::string bad = good;
    bad[pos] ^= 0x04;
    SCOPED_TRACE(pos);
    EXPECT_PGOLF_ERROR(decode_artifact(bad), "header checksum mismatch");
  }
}

TEST(ArtifactTest, ForgedHeaderGarbageAndFields) {
  const std::string good = encode_artifact(sample_model(), kConfig, Codec::kZlib, 9);
  // Garbage JSON with a valid CRC.
  {
    const std::string text = "{\"this is\": not json";
    std::string bad = good.substr(0, 12);
    const uint32_t crc = crc32_of(text);
    const uint64_t len = text.size();
    bad.append(reinterpret_cast<const char*>(&crc), 4);
    bad.append(reinterpret_cast<const char*>(&len), 8);
    EXPECT_PGOLF_ERROR(decode_artifact(bad + text), "artifact header is not valid JSON");
  }
  struct Case {
    std::function<void(Json&, std::string&)> edit;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {[](Json& h, std::string&) { h = Json::array(); }, "not a JSON object"},
      {[](Json& h, std::string&) { h["payload"].erase("compressed_bytes"); },
       "field 'payload.compressed_bytes' is missing"},
      {[](Json& h, std::string&) { h["payload"]["level"] = "nine"; },
       "field 'payload.level' is not a non-negative integer"},
      {[](Json& h, std::string&) { h.erase("config"); }, "field 'config' is missing"},
      {[](Json& h, std::string&) { h["payload"]["codec"] = "gzip"; }, "unknown codec 'gzip'"},
      {[](Json& h, std::string&) { h["quant_format"] = "int6_gptq"; },
       "unsupported quant format 'int6_gptq'"},
      {[](Json& h, std::string&) { h["payload"]["uncompressed_bytes"] = uint64_t{1} << 40; },
       "implausibly large"},
      {[](Json& h, std::string&) {
         h["payload"]["compressed_bytes"] = h["payload"]["compressed_bytes"].get<uint64_t>() - 1;
       },
       "1 unexpected trailing bytes"},
      {[](Json& h, std::string&) { h["payload"]["compressed_crc32"] = 1; },
       "payload checksum mismatch (compressed"},
      {[](Json& h, std::string&) { h["payload"]["uncompressed_crc32"] = 1; },
       "payload checksum mismatch (decompressed"},
      {[](Json& h, std::string&) {
         h["payload"]["uncompressed_bytes"] =
             h["payload"]["uncompressed_bytes"].get<uint64_t>() + 8;
       },
       "the tensor table covers"},
      {[](Json& h, std::string&) { h["tensors"] = Json::object(); }, "tensor table is not a list"},
      {[](Json& h, std::string&) { h["tensors"][1]["offset"] = uint64_t{1} << 33; },
       "tensor table entry 'blocks.0.attn_scale' out of range"},
      {[](Json& h, std::string&) { h["tensors"][0]["scale"]["offset"] = 0; },
       "tensor table entry 'tok_emb.weight' scale: offset 0 but the previous tensor ends at"},
      {[](Json& h, std::string&) { h["tensors"][1]["bytes"] = 100; },
       "'blocks.0.attn_scale': 100 bytes do not match dtype F32"},
      {[](Json& h, std::string&) { h["tensors"][1]["shape"] = {-64}; }, "bad shape"},
      {[](Json& h, std::string&) {
         h["tensors"][1]["shape"] = {0, uint64_t{1} << 62, 8};
       },
       "too large"},
      {[](Json& h, std::string&) { h["tensors"][1]["dtype"] = "F8"; }, "unknown dtype 'F8'"},
      {[](Json& h, std::string&) { h["tensors"][1]["orig_dtype"] = 3; },
       "field 'tensors[1].orig_dtype' is not a string"},
      {[](Json& h, std::string&) { h["tensors"][0]["kind"] = "passthrough"; },
       "do not fit kind passthrough"},
      {[](Json& h, std::string&) { h["tensors"][0]["kind"] = "int4"; }, "unknown kind 'int4'"},
      {[](Json& h, std::string&) { h["tensors"][3]["kind"] = "int8_per_row"; },
       "do not fit kind int8_per_row"},
      {[](Json& h, std::string&) { h["tensors"][1]["name"] = "tok_emb.weight"; },
       "'tok_emb.weight' appears twice"},
      {[](Json& h, std::string&) { h["tensors"][2] = 5; }, "entry #2 is not an object"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.needle);
    EXPECT_PGOLF_ERROR(decode_artifact(forge(good, c.edit), "forged.pgolf"), c.needle);
    EXPECT_PGOLF_ERROR(decode_artifact(forge(good, c.edit), "forged.pgolf"), "forged.pgolf: ");
  }
}

TEST(ArtifactTest, CorruptStreamWithMatchingCrcStillErrors) {
  const std::string good = encode_artifact(sample_model(), kConfig, Codec::kZlib, 9);
  const std::string bad = forge(good, [](Json& h, std::string& payload) {
    payload[payload.size() / 2] ^= 0x10;
    h["payload"]["compressed_crc32"] = crc32_of(payload);
  });
  EXPECT_PGOLF_ERROR(decode_artifact(bad), "payload");
}

TEST(ArtifactTest, BoolBytesAreChecked) {
  const std::string good = encode_artifact(sample_model(), kConfig, Codec::kNone, 0);
  const std::string bad = forge_none(good, [](Json& h, std::string& payload) {
    for (const auto& row : h["tensors"]) {
      if (row["name"] == "mask") payload[row["offset"].get<size_t>()] = 2;
    }
  });
  EXPECT_PGOLF_ERROR(decode_artifact(bad), "BOOL byte 0 is neither 0 nor 1");
  // The same surgery with a valid byte decodes fine: the forge helper is sound.
  const std::string fine = forge_none(good, [](Json&, std::string&) {});
  EXPECT_NO_THROW(decode_artifact(fine));
}

TEST(ArtifactTest, EncodeRejectsUnsupportedDtypes) {
  QuantizedModel model;
  QuantizedEntry complex;
  complex.name = "c";
  complex.q = torch::zeros({2}, torch::kComplexFloat);
  complex.orig_dtype = torch::kComplexFloat;
  model.entries.push_back(complex);
  EXPECT_PGOLF_ERROR(encode_artifact(model, kConfig, Codec::kNone, 0),
                     "tensor 'c' has unsupported dtype");
}

TEST(SizeReportTest, Arithmetic) {
  const SizeReport under = size_report(15'800'300, 126'065);
  EXPECT_EQ(under.total_bytes, 15'926'365);
  EXPECT_TRUE(under.fits());
  EXPECT_EQ(under.describe(),
            "model 15,800,300 + code 126,065 = 15,926,365 bytes (73,635 under the 16,000,000 cap)");

  const SizeReport over = size_report(15'990'000, 20'000);
  EXPECT_FALSE(over.fits());
  EXPECT_NE(over.describe().find("10,000 over the 16,000,000 cap"), std::string::npos);

  EXPECT_TRUE(size_report(15'999'000, 1'000).fits());  // exactly the cap
  EXPECT_FALSE(size_report(15'999'001, 1'000).fits());
  EXPECT_EQ(size_report(5, 7).describe(),
            "model 5 + code 7 = 12 bytes (15,999,988 under the 16,000,000 cap)");

  const SizeReport real = size_report(1'000);
  EXPECT_EQ(real.code_bytes, code_size().bytes);
  EXPECT_GT(real.code_bytes, 0);
  EXPECT_EQ(real.total_bytes, 1'000 + real.code_bytes);
}

}  // namespace
}  // namespace pgolf
