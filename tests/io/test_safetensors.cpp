// Tests for io/safetensors: round trips for every dtype, order and metadata,
// the golden fixtures, and one error per way a file can be malformed.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>
#include <string>

#include "common/error.h"
#include "common/fs.h"
#include "io/safetensors.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

using testing::ScratchDir;
using testing::shared_dir;

// A safetensors file from a hand-written header and data (no padding needed).
std::string make_file(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  return out + header + data;
}

StateDict every_dtype_dict() {
  torch::manual_seed(0);
  StateDict dict;
  // Deliberately not alphabetical: the order must survive the round trip.
  dict.emplace_back("z.f64", torch::randn({3, 2}, torch::kFloat64));
  dict.emplace_back("a.f32", torch::randn({4, 5}));
  dict.emplace_back("m.f16", torch::randn({7}).to(torch::kFloat16));
  dict.emplace_back("b.bf16", torch::randn({2, 3, 4}).to(torch::kBFloat16));
  dict.emplace_back("y.i64", torch::arange(-5, 5, torch::kInt64));
  dict.emplace_back("c.i32", torch::tensor({-2147483647 - 1, 0, 2147483647}, torch::kInt32));
  dict.emplace_back("x.i16", torch::tensor({-32768, 7, 32767}, torch::kInt16));
  dict.emplace_back("d.i8", torch::tensor({-128, -1, 0, 127}, torch::kInt8));
  dict.emplace_back("w.u8", torch::tensor({0, 1, 255}, torch::kUInt8));
  dict.emplace_back("e.bool", torch::tensor({true, false, true}));
  dict.emplace_back("v.scalar", torch::tensor(3.5f));
  dict.emplace_back("f.empty", torch::zeros({0, 3}));
  return dict;
}

void expect_same(const StateDict& a, const StateDict& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first) << "position " << i;
    EXPECT_EQ(a[i].second.scalar_type(), b[i].second.scalar_type()) << a[i].first;
    EXPECT_EQ(a[i].second.sizes(), b[i].second.sizes()) << a[i].first;
    EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
  }
}

TEST(SafetensorsTest, RoundTripEveryDtypeOrderAndMetadata) {
  ScratchDir dir;
  const StateDict dict = every_dtype_dict();
  const SafetensorsMetadata metadata = {{"config", "{\"a\": 1}"}, {"format", "pt"}};
  write_safetensors(dir / "x.safetensors", dict, metadata);

  SafetensorsMetadata read_metadata;
  const StateDict back = read_safetensors(dir / "x.safetensors", &read_metadata);
  expect_same(dict, back);
  EXPECT_EQ(read_metadata, metadata);

  // Data starts 8-byte aligned.
  const std::string bytes = read_file(dir / "x.safetensors");
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  EXPECT_EQ((8 + header_len) % 8, 0u);
}

TEST(SafetensorsTest, WritesNonContiguousTensorsAndIsDeterministic) {
  const torch::Tensor base = torch::arange(12, torch::kFloat32).reshape({3, 4});
  const StateDict dict = {{"t", base.t()}, {"slice", base.index({torch::indexing::Slice(), 1})}};
  const std::string bytes = safetensors_bytes(dict);
  EXPECT_EQ(bytes, safetensors_bytes(dict));
  const StateDict back = parse_safetensors(bytes, "mem");
  EXPECT_TRUE(torch::equal(back[0].second, base.t()));
  EXPECT_TRUE(back[0].second.is_contiguous());
  EXPECT_TRUE(torch::equal(back[1].second, base.index({torch::indexing::Slice(), 1})));
}

TEST(SafetensorsTest, ResultFollowsDataOrderNotJsonOrder) {
  const std::string header = R"({"second":{"dtype":"U8","shape":[2],"data_offsets":[1,3]},)"
                             R"("first":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})";
  const StateDict dict = parse_safetensors(make_file(header, "\x01\x02\x03"), "mem");
  ASSERT_EQ(dict.size(), 2u);
  EXPECT_EQ(dict[0].first, "first");
  EXPECT_EQ(dict[1].first, "second");
  EXPECT_EQ(dict[1].second[1].item<uint8_t>(), 3);
}

TEST(SafetensorsTest, ReadsTinyWeights) {
  PGOLF_REQUIRE_SHARED();
  SafetensorsMetadata metadata;
  const StateDict dict =
      read_safetensors(shared_dir() / "golden/baseline/tiny_weights.safetensors", &metadata);
  ASSERT_EQ(dict.size(), 42u);  // skip_weights, tok_emb, 4 blocks x 10
  EXPECT_EQ(dict[0].first, "skip_weights");
  EXPECT_EQ(dict[1].first, "tok_emb.weight");
  EXPECT_EQ(dict[2].first, "blocks.0.attn_scale");
  EXPECT_EQ(dict.back().first, "blocks.3.mlp.proj.weight");
  int64_t params = 0;
  for (const auto& [name, t] : dict) {
    EXPECT_EQ(t.scalar_type(), torch::kFloat32) << name;
    params += t.numel();
  }
  EXPECT_EQ(params, 592144);
  EXPECT_EQ(find_tensor(dict, "tok_emb.weight").sizes(), (std::vector<int64_t>{1024, 128}));
  EXPECT_EQ(find_tensor(dict, "skip_weights").sizes(), (std::vector<int64_t>{2, 128}));
  ASSERT_TRUE(metadata.count("config"));
  EXPECT_NE(metadata["config"].find("\"num_layers\": 4"), std::string::npos);
}

TEST(SafetensorsTest, Bf16EqualsItsF32Twin) {
  PGOLF_REQUIRE_SHARED();
  const StateDict dict = read_safetensors(shared_dir() / "golden/baseline/muon_ns5.safetensors");
  for (const std::string name : {"output_bf16", "tall_output_bf16", "output_bf16_torch2_emulated",
                                 "tall_output_bf16_torch2_emulated"}) {
    const torch::Tensor& bf16 = find_tensor(dict, name);
    const torch::Tensor& f32 = find_tensor(dict, name + "_as_f32");
    EXPECT_EQ(bf16.scalar_type(), torch::kBFloat16) << name;
    EXPECT_TRUE(torch::equal(bf16.to(torch::kFloat32), f32)) << name;
  }
}

TEST(SafetensorsTest, MalformedFilesError) {
  const std::string u8x2 = R"({"w":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})";
  struct Case {
    std::string bytes;
    std::string needle;
  };
  std::string huge_len(8, '\xff');
  const std::vector<Case> cases = {
      {"", "too short"},
      {"abc", "too short"},
      {huge_len + "{}", "truncated: header length"},
      {make_file("{not json", ""), "not valid JSON"},
      {make_file("[1, 2]", ""), "not a JSON object"},
      {make_file(R"({"w":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}})", std::string(8, 'x')),
       "tensor 'w': unsupported dtype 'C64'"},
      {make_file(R"({"w":{"shape":[1],"data_offsets":[0,1]}})", "x"), "tensor 'w': missing dtype"},
      {make_file(R"({"w":{"dtype":"U8","data_offsets":[0,1]}})", "x"), "tensor 'w': missing shape"},
      {make_file(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, 'x')),
       "tensor 'w': data_offsets span 8 bytes but dtype F32 x shape needs 12"},
      {make_file(R"({"w":{"dtype":"U8","shape":[-2],"data_offsets":[0,2]}})", "xx"),
       "non-negative"},
      {make_file(R"({"w":{"dtype":"U8","shape":[2.5],"data_offsets":[0,2]}})", "xx"),
       "non-negative"},
      {make_file(R"({"w":{"dtype":"U8","shape":[2],"data_offsets":[2,0]}})", "xx"), "reversed"},
      {make_file(R"({"w":{"dtype":"U8","shape":[2],"data_offsets":[0]}})", "xx"),
       "data_offsets must be [begin, end]"},
      {make_file(u8x2, "x"), "truncated: tensor 'w' ends at data byte 2"},
      {make_file(u8x2, "xyz"), "1 bytes of data after the last tensor"},
      {make_file(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                 R"("b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}})",
                 "xyz"),
       "tensor 'b': data_offsets [1, 3] overlap or leave a gap"},
      {make_file(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})", "xy"),
       "tensor 'a': data_offsets [1, 2] overlap or leave a gap"},
      {make_file(R"({"w":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,0]}})",
                 ""),
       "impossibly large"},
      {make_file(R"({"w":{"dtype":"U8","shape":[0,4294967296,4294967296],"data_offsets":[0,0]}})",
                 ""),
       "impossibly large"},
      {make_file(R"({"__metadata__":{"k":3}})", ""), "__metadata__ value 'k' is not a string"},
      {make_file(R"({"__metadata__":[]})", ""), "__metadata__ is not an object"},
      {make_file(R"({"w":[1]})", ""), "tensor 'w': header entry is not an object"},
      {make_file(R"({"w":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}})",
                 std::string("\x01\x02", 2)),
       "tensor 'w': BOOL byte 1 is neither 0 nor 1"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.needle);
    EXPECT_PGOLF_ERROR(parse_safetensors(c.bytes, "bad.safetensors"), c.needle);
    EXPECT_PGOLF_ERROR(parse_safetensors(c.bytes, "bad.safetensors"), "bad.safetensors: ");
  }
}

TEST(SafetensorsTest, EveryTruncationOfAValidFileErrors) {
  const std::string bytes = safetensors_bytes(every_dtype_dict(), {{"k", "v"}});
  for (size_t n = 0; n < bytes.size(); n += 7) {
    EXPECT_THROW(parse_safetensors(std::string_view(bytes).substr(0, n), "cut"), Error) << n;
  }
}

TEST(SafetensorsTest, ReadErrorsNameTheFile) {
  ScratchDir dir;
  EXPECT_PGOLF_ERROR(read_safetensors(dir / "missing.safetensors"), "missing.safetensors");
  write_file_atomic(dir / "junk.safetensors", "this is not a safetensors file at all");
  EXPECT_PGOLF_ERROR(read_safetensors(dir / "junk.safetensors"), "junk.safetensors: ");
}

TEST(SafetensorsTest, WriteRejectsBadInput) {
  const torch::Tensor t = torch::zeros({2});
  EXPECT_PGOLF_ERROR(safetensors_bytes({{"a", t}, {"a", t}}), "'a' appears twice");
  EXPECT_PGOLF_ERROR(safetensors_bytes({{"__metadata__", t}}), "reserved");
  EXPECT_PGOLF_ERROR(safetensors_bytes({{"c", torch::zeros({2}, torch::kComplexFloat)}}),
                     "tensor 'c' has unsupported dtype");
  EXPECT_PGOLF_ERROR(safetensors_bytes({{"u", torch::Tensor()}}), "tensor 'u' is undefined");
}

TEST(SafetensorsTest, DtypeNames) {
  EXPECT_EQ(dtype_name(torch::kBFloat16), "BF16");
  EXPECT_EQ(parse_dtype_name("I16"), torch::kInt16);
  EXPECT_FALSE(parse_dtype_name("F8_E4M3").has_value());
  EXPECT_PGOLF_ERROR(dtype_name(torch::kComplexDouble), "no safetensors name");
}

}  // namespace
}  // namespace pgolf
