// Version 3 of the artifact: #1855's LQER factors (asymmetric and symmetric)
// round trip with every plain codec and restore the corrected weights; older
// versions cannot carry them; forged or damaged LQER sections give one clear
// error, never wrong weights.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>

#include "artifact/artifact.h"
#include "quant/intn.h"
#include "quant/lqer.h"
#include "quant/scheme.h"
#include "tests/artifact/artifact_forge.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

using Json = nlohmann::json;
using Kind = QuantizedEntry::Kind;

// An int6 matrix with asymmetric factors, an int7 one with symmetric ones.
QuantizedModel lqer_model() {
  torch::manual_seed(4);
  QuantizedModel m;
  m.format = std::string(scheme_quant_format(SchemeId::kPr1855));
  for (const auto& [name, cols, bits, asym] :
       {std::tuple{"blocks.0.mlp.fc.weight", int64_t{64}, 6, true},
        std::tuple{"tok_emb.weight", int64_t{30}, 7, false}}) {
    QuantizedEntry e;
    e.name = name;
    e.kind = Kind::kIntNPerRow;
    e.bits = bits;
    e.q = torch::randint(-31, 32, {16, cols}, torch::kInt8);
    e.scale = (torch::rand({16}) * 0.01).to(torch::kHalf);
    LqerOptions options;
    options.asymmetric = asym;
    e.lqer = lqer_factorize(torch::randn({16, cols}) * 0.01, options);
    m.entries.push_back(e);
  }
  return m;
}

Json& row_named(Json& header, const std::string& name) {
  for (Json& row : header["tensors"]) {
    if (row["name"] == name) return row;
  }
  throw std::runtime_error("no row " + name);
}

TEST(ArtifactLqer, RoundTripsWithEveryCodecAndRestoresTheCorrection) {
  const QuantizedModel model = lqer_model();
  ASSERT_TRUE(model.entries[0].lqer.asymmetric);
  ASSERT_FALSE(model.entries[1].lqer.asymmetric);
  const StateDict expected = dequantize(model);
  for (const Codec codec :
       {Codec::kNone, Codec::kZlib, Codec::kZstd, Codec::kLzma, Codec::kBrotli}) {
    SCOPED_TRACE(std::string(codec_name(codec)));
    const LoadedArtifact loaded =
        decode_artifact(encode_artifact(model, Json::object(), codec, default_level(codec)));
    EXPECT_EQ(loaded.info.format_version, kArtifactVersion);
    ASSERT_EQ(loaded.model.entries.size(), 2u);
    for (size_t i = 0; i < 2; ++i) {
      const LowRankFactors& f = loaded.model.entries[i].lqer;
      ASSERT_TRUE(f.defined());
      EXPECT_EQ(f.asymmetric, model.entries[i].lqer.asymmetric);
      EXPECT_EQ(f.bits, model.entries[i].lqer.bits);
      EXPECT_TRUE(torch::equal(f.b, model.entries[i].lqer.b));
    }
    const StateDict restored = dequantize(loaded.model);
    for (size_t i = 0; i < 2; ++i)
      EXPECT_TRUE(torch::equal(restored[i].second, expected[i].second));
    // The correction is really applied.
    const QuantizedEntry& e = loaded.model.entries[0];
    EXPECT_FALSE(torch::equal(restored[0].second, dequantize_codes(e.q, e.scale)));
  }
}

TEST(ArtifactLqer, ForgedOrOlderLqerSectionsFailClearly) {
  const std::string good = encode_artifact(lqer_model(), Json::object(), Codec::kNone, 0);
  std::string v2 = good;
  v2[8] = 2;
  EXPECT_PGOLF_ERROR(decode_artifact(v2), "LQER factors need artifact version 3");
  const auto forged = [&](const std::function<void(Json&)>& edit) {
    return testing::forge(good, [&](Json& h, std::string&) { edit(h); });
  };
  EXPECT_PGOLF_ERROR(decode_artifact(forged([](Json& h) {
                       row_named(h, "tok_emb.weight")["lqer"]["packing"] = "diagonal";
                     })),
                     "unknown LQER packing 'diagonal'");
  EXPECT_PGOLF_ERROR(decode_artifact(forged(
                         [](Json& h) { row_named(h, "tok_emb.weight")["lqer"].erase("b_scale"); })),
                     "lqer.b_scale' is missing");
  // A's rank changed: the chunk no longer fits the bytes.
  EXPECT_PGOLF_ERROR(decode_artifact(forged([](Json& h) {
                       row_named(h, "blocks.0.mlp.fc.weight")["lqer"]["a"]["shape"] = {16, 3};
                     })),
                     "do not match dtype");
  // Consistent bytes, wrong shape for the tensor: B [4, 64] read as [8, 32].
  EXPECT_PGOLF_ERROR(decode_artifact(forged([](Json& h) {
                       row_named(h, "blocks.0.mlp.fc.weight")["lqer"]["b"]["shape"] = {8, 32};
                     })),
                     "do not fit a 16 x 64 tensor");
  EXPECT_PGOLF_ERROR(
      decode_artifact(forged([](Json& h) { row_named(h, "tok_emb.weight")["lqer"]["bits"] = 1; })),
      "LQER factor width 1");
}

TEST(ArtifactLqer, CodesOutsideTheirRangeAreRefused) {
  QuantizedModel model = lqer_model();
  model.entries[0].lqer.a = model.entries[0].lqer.a.clone();
  model.entries[0].lqer.a[0][0] = 3;  // int2 stops at +1
  EXPECT_PGOLF_ERROR(encode_artifact(model, Json::object(), Codec::kNone, 0), "outside [-2, 1]");
}

}  // namespace
}  // namespace pgolf
