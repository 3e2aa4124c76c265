// Tests for quant/scheme: each entry's format rules on its real tensor names
// and shapes (spec §3.5 tables), and quantize_model / dequantize_model for
// every scheme: formats as assigned, codes in range, the exact inverse, the
// baseline unchanged, and Hessians switching to full GPTQ.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "quant/quant.h"  // the whole library, through its table of contents
#include "tests/quant/single_thread.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

class QuantSchemeTest : public testing::SingleThreadTest {};

using Kind = QuantizedEntry::Kind;

struct Case {
  std::string name;
  std::vector<int64_t> shape;
  TensorFormat expected;
};

void expect_formats(const QuantScheme& scheme, const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    // Only the name, shape and dtype matter: an uninitialised tensor will do.
    const torch::Tensor t = torch::empty(c.shape);
    EXPECT_EQ(format_name(assign_format(scheme, c.name, t)), format_name(c.expected))
        << scheme_name(scheme.id) << " " << c.name;
  }
}

constexpr auto kFp32 = TensorFormat::kKeepFp32;
constexpr auto kFp16 = TensorFormat::kKeepFp16;
constexpr auto kInt8 = TensorFormat::kInt8;
constexpr auto kInt7 = TensorFormat::kInt7;
constexpr auto kInt6 = TensorFormat::kInt6;
constexpr auto kInt5 = TensorFormat::kInt5;

TEST_F(QuantSchemeTest, Names) {
  EXPECT_EQ(quant_scheme("pr1406").id, SchemeId::kPr1406);
  EXPECT_EQ(quant_scheme("pr461").id, SchemeId::kPr461);
  EXPECT_EQ(quant_scheme("pr456").id, SchemeId::kPr456);
  EXPECT_EQ(quant_scheme("pr562").id, SchemeId::kPr562);
  EXPECT_EQ(quant_scheme("pr1855").id, SchemeId::kPr1855);
  EXPECT_EQ(quant_scheme("int8").id, SchemeId::kInt8Baseline);
  EXPECT_EQ(quant_scheme("baseline").id, SchemeId::kInt8Baseline);
  EXPECT_PGOLF_ERROR(quant_scheme("pr999"),
                     "quantization scheme: 'pr999' is not one of int8 | pr1406");
  EXPECT_TRUE(is_known_quant_format("int8_clean_per_row_v1"));
  EXPECT_TRUE(is_known_quant_format(scheme_quant_format(SchemeId::kPr562)));
  EXPECT_FALSE(is_known_quant_format("int6_gptq"));
}

TEST_F(QuantSchemeTest, Pr1406Formats) {
  // d = 512, 8 heads, 4 KV heads, MLP 3x, vocab 1024; unbanked names.
  expect_formats(quant_scheme("pr1406"),
                 {{"blocks.3.attn.c_q.weight", {512, 512}, kInt6},
                  {"blocks.3.attn.c_k.weight", {256, 512}, kInt6},
                  {"blocks.3.attn.c_v.weight", {256, 512}, kInt6},
                  {"blocks.3.attn.proj.weight", {512, 512}, kInt6},
                  {"blocks.3.mlp.fc.weight", {1536, 512}, kInt6},  // all-int6: no int5
                  {"blocks.3.mlp.proj.weight", {512, 1536}, kInt6},
                  {"tok_emb.weight", {1024, 512}, kInt8},
                  {"lm_head.weight", {1024, 512}, kInt8},
                  {"bigram.embed.weight", {1536, 128}, kInt8},  // category "other" in #1406
                  {"ve_shared.embed.weight", {1024, 128}, kInt8},
                  {"bigram.proj.weight", {512, 128}, kFp16},  // exactly 65,536
                  {"ve_shared.proj.weight", {256, 128}, kFp16},
                  {"blocks.0.attn.q_gain", {8}, kFp16},  // control, but small first
                  {"blocks.0.attn_scale", {512}, kFp16},
                  {"skip_weights", {5, 512}, kFp16},
                  {"smear.gate", {512}, kFp16},
                  {"ve_layer_scales.0", {1}, kFp16},
                  {"blocks.0.resid_mix", {2, 40'000}, kFp32},  // a large control tensor
                  {"blocks.0.attn.attn_gate.weight", {200, 512}, kFp32}});
  const torch::Tensor ids = torch::zeros({300, 300}, torch::kInt64);
  EXPECT_EQ(assign_format(quant_scheme("pr1406"), "ids", ids), TensorFormat::kPassthrough);
}

TEST_F(QuantSchemeTest, Pr461Formats) {
  const std::vector<Case> common = {
      {"cores.3.mlp.fc.weight", {1536, 512}, kInt5},
      {"cores.3.mlp.proj.weight", {512, 1536}, kInt5},
      {"cores.3.attn.c_q.weight", {512, 512}, kInt6},
      {"cores.3.attn.c_k.weight", {256, 512}, kInt6},
      {"cores.3.attn.proj.weight", {512, 512}, kInt6},
      {"cores.2.attn.c_k.weight", {256, 512}, kFp16},  // FP16_KEEP
      {"tok_emb.weight", {1024, 512}, kFp16},
      {"bigram.embed.weight", {2048, 128}, kInt6},
      {"bigram.proj.weight", {512, 128}, kInt6},  // 65,536 > 8,192
      {"blocks.0.attn.q_gain", {8}, kFp16},
      {"blocks.3.attn_scale", {512}, kFp16},
      {"skip_weights", {5, 512}, kFp16},
      {"bigram.scale", {1}, kFp16},
      {"small.matrix", {64, 128}, kFp16},        // 8,192: still small
      {"cores.0.resid_mix", {2, 5'000}, kFp32},  // 10,000: control
      {"bigram.scale_table", {10'000}, kFp32},   // contains "bigram.scale"
      {"other.matrix", {64, 129}, kInt8},        // 8,256: other -> int8
  };
  expect_formats(quant_scheme("pr461"), common);
  expect_formats(quant_scheme("pr456"), common);
  // #461 has the value embedding; #456 lacks its control patterns.
  expect_formats(quant_scheme("pr461"), {{"ve_shared.embed.weight", {1024, 128}, kInt8},
                                         {"ve_shared.proj.weight", {256, 128}, kInt6},
                                         {"ve_layer_scales", {10'000}, kFp32}});
  expect_formats(quant_scheme("pr456"), {{"ve_layer_scales", {10'000}, kInt8}});
  // ALL_INT5: every int6 tensor becomes int5.
  QuantScheme all5 = quant_scheme("pr461");
  all5.all_int5 = true;
  expect_formats(all5, {{"cores.3.attn.c_q.weight", {512, 512}, kInt5},
                        {"bigram.embed.weight", {2048, 128}, kInt5},
                        {"cores.3.mlp.fc.weight", {1536, 512}, kInt5},
                        {"tok_emb.weight", {1024, 512}, kFp16}});
}

TEST_F(QuantSchemeTest, Pr562Formats) {
  expect_formats(quant_scheme("pr562"),
                 {{"blocks.3.mlp.fc.weight", {1536, 512}, kInt5},
                  {"blocks.3.mlp.proj.weight", {512, 1536}, kInt5},
                  {"blocks.3.attn.c_q.weight", {512, 512}, kInt6},
                  {"blocks.2.attn.c_k.weight", {256, 512}, kInt6},
                  {"blocks.8.attn.c_k.weight", {256, 512}, kFp16},  // FP16_KEEP
                  {"cores.2.attn.c_k.weight", {256, 512}, kInt6},   // #461's pattern, not #562's
                  {"tok_emb.weight", {1024, 512}, kFp16},
                  {"bigram.embed.weight", {2048, 128}, kInt6},
                  {"bigram.proj.weight", {512, 128}, kInt6},
                  {"blocks.0.attn.attn_gate.weight", {8, 512}, kFp16},
                  {"blocks.0.attn.vr_lambda", {2}, kFp16},
                  {"smear.gate", {512}, kFp16},
                  {"ve_layer_scales", {10'000}, kInt8}});
}

TEST_F(QuantSchemeTest, BaselineFormats) {
  // The baseline's control tensors are the model's list (is_control_tensor).
  expect_formats(quant_scheme("int8"), {{"blocks.0.mlp.fc.weight", {1024, 512}, kInt8},
                                        {"blocks.0.attn.c_k.weight", {256, 512}, kInt8},
                                        {"tok_emb.weight", {1024, 512}, kInt8},
                                        {"blocks.0.attn_scale", {512}, kFp32},
                                        {"blocks.0.attn.q_gain", {8}, kFp32},
                                        {"skip_weights", {4, 512}, kFp32},
                                        {"small.matrix", {128, 128}, kFp16}});
}

// A small model that reaches every format of every scheme.
StateDict small_model() {
  torch::manual_seed(21);
  StateDict dict;
  dict.emplace_back("blocks.0.attn.c_q.weight", torch::randn({300, 256}) * 0.05);
  dict.emplace_back("blocks.0.mlp.fc.weight", torch::randn({300, 256}) * 0.05);
  dict.emplace_back("tok_emb.weight", (torch::randn({300, 256}) * 0.5).to(torch::kBFloat16));
  dict.emplace_back("bigram.embed.weight", torch::randn({80, 128}) * 0.1);
  dict.emplace_back("blocks.0.attn_scale", torch::rand({256}));
  dict.emplace_back("blocks.0.resid_mix", torch::rand({2, 40'000}));
  dict.emplace_back("conv", torch::randn({3, 150, 150}));
  dict.emplace_back("blocks.0.mlp.gain", torch::randn({70'000}));  // intN per tensor
  dict.emplace_back("step", torch::tensor({7}, torch::kInt64));
  return dict;
}

std::vector<QuantScheme> every_scheme() {
  std::vector<QuantScheme> schemes;
  for (const char* name : {"int8", "pr1406", "pr461", "pr456", "pr562"}) {
    schemes.push_back(quant_scheme(name));
  }
  QuantScheme lite = quant_scheme("pr461");
  lite.gptq_lite = true;
  schemes.push_back(lite);
  return schemes;
}

TEST_F(QuantSchemeTest, QuantizeModelFollowsTheFormatsAndInvertsExactly) {
  const StateDict dict = small_model();
  for (const QuantScheme& scheme : every_scheme()) {
    SCOPED_TRACE(std::string(scheme_name(scheme.id)) + (scheme.gptq_lite ? " lite" : ""));
    const QuantizedModel model = quantize_model(dict, scheme);
    EXPECT_EQ(model.format, scheme_quant_format(scheme.id));
    const StateDict restored = dequantize_model(model);
    ASSERT_EQ(model.entries.size(), dict.size());
    ASSERT_EQ(restored.size(), dict.size());
    for (size_t i = 0; i < dict.size(); ++i) {
      const auto& [name, original] = dict[i];
      const QuantizedEntry& e = model.entries[i];
      SCOPED_TRACE(name);
      EXPECT_EQ(e.name, name);
      EXPECT_EQ(restored[i].first, name);
      EXPECT_EQ(entry_format(e), assign_format(scheme, name, original));
      EXPECT_EQ(restored[i].second.scalar_type(), original.scalar_type());
      EXPECT_EQ(restored[i].second.sizes(), original.sizes());
      if (!is_integer_kind(e.kind)) {
        EXPECT_TRUE(torch::equal(restored[i].second, e.q.to(original.scalar_type())));
        continue;
      }
      // Codes in range, and the inverse is exactly q * s in the original dtype.
      int lo = -(1 << (e.bits - 1));
      int hi = (1 << (e.bits - 1)) - 1;
      if (e.bits == 8) lo = -127;
      if (e.bits != 8 && scheme.id == SchemeId::kPr1406) lo = -31;
      EXPECT_GE(e.q.min().item<int>(), lo);
      EXPECT_LE(e.q.max().item<int>(), hi);
      EXPECT_TRUE(torch::equal(restored[i].second,
                               dequantize_codes(e.q, e.scale).to(original.scalar_type())));
      // And near the original: on average within a step of the coarsest row.
      const double step = e.scale.to(torch::kFloat32).max().item<double>();
      EXPECT_LE((restored[i].second.to(torch::kFloat32) - original.to(torch::kFloat32))
                    .abs()
                    .mean()
                    .item<double>(),
                step);
    }
  }
}

TEST_F(QuantSchemeTest, BaselineSchemeIsTheInt8Export) {
  const StateDict dict = small_model();
  const QuantizedModel a = quantize_model(dict, quant_scheme("int8"));
  const QuantizedModel b = quantize_int8(dict);
  ASSERT_EQ(a.entries.size(), b.entries.size());
  for (size_t i = 0; i < a.entries.size(); ++i) {
    EXPECT_EQ(a.entries[i].kind, b.entries[i].kind);
    EXPECT_TRUE(torch::equal(a.entries[i].q, b.entries[i].q));
    EXPECT_EQ(a.entries[i].bits, is_integer_kind(b.entries[i].kind) ? 8 : 0);
  }
}

TEST_F(QuantSchemeTest, EntryQuantizersAreTheSeeds) {
  const StateDict dict = small_model();
  const torch::Tensor& w = dict[0].second;  // attention: int6
  const torch::Tensor& m = dict[1].second;  // MLP: int5 (int6 in #1406)
  const auto entry = [&](const char* scheme, size_t i) {
    return quantize_model(dict, quant_scheme(scheme)).entries[i];
  };
  EXPECT_TRUE(torch::equal(entry("pr1406", 0).q,
                           clip_search_per_matrix(w, int6_pr1406(), clip_candidates_pr1406()).q));
  EXPECT_TRUE(torch::equal(entry("pr461", 1).q, quantize_rowmax(m, int5_pr461()).q));
  EXPECT_TRUE(torch::equal(
      entry("pr562", 1).q,
      clip_search_per_row(m, int5_pr461(), clip_candidates_pr1406(), ClipQuantile::kInterpolated)
          .q));
  EXPECT_EQ(entry("pr461", 1).bits, 5);
  EXPECT_EQ(entry("pr1406", 1).bits, 6);
}

TEST_F(QuantSchemeTest, HessiansSwitchToFullGptq) {
  const StateDict dict = small_model();
  torch::manual_seed(5);
  const torch::Tensor x = torch::randn({512, 256}).matmul(torch::randn({256, 256}));
  HessianAccumulator acc(256);
  acc.add(x);
  const Hessians hessians = {{"blocks.0.attn.c_q.weight", acc.hessian()}};
  const QuantizedModel with = quantize_model(dict, quant_scheme("pr1406"), &hessians);
  EXPECT_TRUE(
      torch::equal(with.entries[0].q, gptq_quantize_pr1406(dict[0].second, hessians[0].second).q));
  // The MLP has no Hessian: the clip search as before.
  const QuantizedModel without = quantize_model(dict, quant_scheme("pr1406"));
  EXPECT_TRUE(torch::equal(with.entries[1].q, without.entries[1].q));
  EXPECT_FALSE(torch::equal(with.entries[0].q, without.entries[0].q));

  // #562 matches by substring (module name + ".weight").
  const Hessians by_module = {{"attn.c_q.weight", acc.hessian()}};
  const QuantizedModel q562 = quantize_model(dict, quant_scheme("pr562"), &by_module);
  EXPECT_TRUE(torch::equal(
      q562.entries[0].q, gptq_quantize_pr562(dict[0].second, by_module[0].second, int6_pr461()).q));
}

TEST_F(QuantSchemeTest, Pr1855Formats) {
  // The record: d = 512, 8 heads, 4 KV heads, MLP 4x, vocab 8192 (docs/entries/pr1855.md §7.4).
  const QuantScheme scheme = quant_scheme("pr1855");
  expect_formats(scheme, {{"blocks.3.attn.c_q.weight", {512, 512}, kInt6},
                          {"blocks.3.attn.c_k.weight", {256, 512}, kInt6},
                          {"blocks.3.attn.proj.weight", {512, 512}, kInt6},
                          {"blocks.3.mlp.fc.weight", {2048, 512}, kInt6},
                          {"blocks.3.mlp.proj.weight", {512, 2048}, kInt6},
                          {"tok_emb.weight", {8192, 512}, kInt7},
                          {"blocks.3.attn.attn_gate_w", {8, 12}, kInt8},    // sparse gate
                          {"blocks.3.attn.attn_gate_w", {8, 512}, kInt8},   // dense: 4,096
                          {"blocks.3.attn.attn_gate_w", {4, 4}, kFp16},     // < 32 values
                          {"blocks.3.attn.c_v.weight", {128, 512}, kFp16},  // exactly 65,536
                          {"skip_weights", {5, 512}, kFp16},
                          {"blocks.0.resid_mix", {2, 512}, kFp16},
                          {"smear_gate.weight", {1, 12}, kFp16}});
  QuantScheme no_gate = scheme;
  no_gate.sdclip.gate_int8 = false;
  expect_formats(no_gate, {{"blocks.3.attn.attn_gate_w", {8, 12}, kFp16}});
  QuantScheme int5 = scheme;
  int5.sdclip.matrix_bits = 5;
  expect_formats(int5, {{"blocks.3.mlp.fc.weight", {2048, 512}, kInt5}});
  EXPECT_EQ(scheme.sdclip.sigmas_for("tok_emb.weight"), 14.0);
  EXPECT_EQ(scheme.sdclip.sigmas_for("blocks.1.mlp.fc.weight"), 11.5);
  EXPECT_EQ(scheme.sdclip.sigmas_for("blocks.1.attn.c_q.weight"), 13.0);
  EXPECT_EQ(scheme.sdclip.sigmas_for("bigram.proj.weight"), 12.85);
}

StateDict pr1855_model() {
  torch::manual_seed(11);
  StateDict dict;
  dict.emplace_back("blocks.0.attn.c_q.weight", torch::randn({300, 256}) * 0.05);
  dict.emplace_back("blocks.0.mlp.fc.weight", torch::randn({300, 256}) * 0.05);
  dict.emplace_back("tok_emb.weight", (torch::randn({300, 256}) * 0.5).to(torch::kBFloat16));
  dict.emplace_back("blocks.0.attn.attn_gate_w", torch::randn({8, 12}));
  dict.emplace_back("blocks.0.attn_scale", torch::rand({256}));
  dict.emplace_back("step", torch::tensor({7}, torch::kInt64));
  return dict;
}

TEST_F(QuantSchemeTest, Pr1855RoundsToNearestWithoutHessiansAndRunsGptqWithThem) {
  const StateDict dict = pr1855_model();
  QuantScheme scheme = quant_scheme("pr1855");
  scheme.lqer.enabled = false;
  const QuantizedModel rtn = quantize_model(dict, scheme);
  EXPECT_EQ(rtn.format, "pr1855_sdclip_gptq_lqer_v1");
  const torch::Tensor& w = dict[0].second;
  const torch::Tensor s = sdclip_scales(w, 6, 13.0);
  EXPECT_TRUE(torch::equal(rtn.entries[0].scale, s));
  EXPECT_TRUE(torch::equal(rtn.entries[0].q, quantize_with_scales(w, s, sdclip_grid(6))));
  EXPECT_EQ(rtn.entries[2].bits, 7);
  EXPECT_LE(rtn.entries[2].q.abs().max().item<int>(), 63);
  EXPECT_EQ(rtn.entries[3].kind, Kind::kInt8PerRow);  // the gate: max|row| / 127
  EXPECT_TRUE(
      torch::equal(rtn.entries[3].scale, (dict[3].second.abs().amax(1) / 127.0).to(torch::kHalf)));
  EXPECT_EQ(rtn.entries[3].q.abs().max().item<int>(), 127);
  EXPECT_EQ(rtn.entries[5].kind, Kind::kPassthrough);

  torch::manual_seed(5);
  Hessians hessians;
  for (size_t i = 0; i < 3; ++i) {
    const torch::Tensor x = torch::randn({512, 256}).matmul(torch::randn({256, 256}));
    hessians.emplace_back(dict[i].first, x.t().matmul(x) / 16);
  }
  const QuantizedModel gptq = quantize_model(dict, scheme, &hessians);
  const IntQuantized direct = gptq_quantize_sdclip(dict[1].second, hessians[1].second, 6, 11.5);
  EXPECT_TRUE(torch::equal(gptq.entries[1].q, direct.q));
  EXPECT_TRUE(torch::equal(gptq.entries[1].scale, direct.scale));
  EXPECT_FALSE(torch::equal(gptq.entries[1].q, rtn.entries[1].q));
  // GPTQ lowers the error it minimises.
  EXPECT_LT(hessian_weighted_error(dict[1].second, direct, hessians[1].second),
            hessian_weighted_error(dict[1].second, {rtn.entries[1].q, rtn.entries[1].scale},
                                   hessians[1].second));
  const Hessians missing(hessians.begin(), hessians.begin() + 2);
  EXPECT_PGOLF_ERROR(quantize_model(dict, scheme, &missing), "no Hessian for 'tok_emb.weight'");
}

TEST_F(QuantSchemeTest, Pr1855LqerCorrectsTheTensorsWithTheLargestError) {
  const StateDict dict = pr1855_model();
  QuantScheme scheme = quant_scheme("pr1855");
  scheme.lqer.top_k = 2;
  const QuantizedModel model = quantize_model(dict, scheme);
  // tok_emb (std 0.5) has by far the largest error, then one of the two 0.05 matrices.
  std::vector<double> norms;
  for (size_t i = 0; i < 3; ++i) {
    const QuantizedEntry& e = model.entries[i];
    norms.push_back((dict[i].second.to(torch::kFloat32) - dequantize_codes(e.q, e.scale))
                        .norm()
                        .item<double>());
  }
  const size_t second = norms[0] > norms[1] ? 0 : 1;
  EXPECT_TRUE(model.entries[2].lqer.defined());
  EXPECT_TRUE(model.entries[second].lqer.defined());
  EXPECT_FALSE(model.entries[1 - second].lqer.defined());
  EXPECT_FALSE(model.entries[3].lqer.defined());
  // Dequantization adds the correction, in the original dtype at the end.
  const StateDict restored = dequantize_model(model);
  const QuantizedEntry& e = model.entries[second];
  EXPECT_TRUE(torch::equal(restored[second].second,
                           dequantize_codes(e.q, e.scale) + lqer_correction(e.lqer)));
  EXPECT_EQ(restored[2].second.scalar_type(), torch::kBFloat16);
  const double corrected = (dict[second].second - restored[second].second).norm().item<double>();
  EXPECT_LT(corrected, norms[second]);
}

}  // namespace
}  // namespace pgolf
