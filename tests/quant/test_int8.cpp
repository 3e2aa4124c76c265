// Tests for quant/int8: hand-computed codes and scales (quantile clip and the
// fp32-quantize / fp16-store asymmetry), the export rules by name, size and
// dtype, round-trip error bounds, and the reference's stats.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "common/error.h"
#include "io/safetensors.h"
#include "quant/int8.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

using Kind = QuantizedEntry::Kind;

const QuantizedEntry& entry_named(const QuantizedModel& model, const std::string& name) {
  for (const auto& e : model.entries) {
    if (e.name == name) return e;
  }
  throw std::runtime_error("no entry " + name);
}

TEST(Int8Test, HandComputedPerRow) {
  // Row 0: |W| sorted = [1, 2, 3, 254]. Linear quantile at q = 0.9999984:
  // rank = q * 3 = 2.9999952, clip = 3 + 0.9999952 * 251 = 253.9988 (fp32:
  // 253.99879455566406). s = clip / 127 = 1.99999046 (fp32), stored fp16 = 2.0.
  // q = round([1, -2, 3, -253.9988] / 1.99999046) = [1, -1, 2, -127]: 1/s is
  // just above 0.5, so it rounds to 1, though 1/2.0 (the stored scale) would
  // round half-to-even to 0. That is the reference's asymmetry.
  // Row 1: clip ~ 0.004 < 1, so s = 1/127 (floor), stored fp16(1/127) =
  // 0.00787353515625; q = round(W * 127) = [0, 0, 0, 1] (0.004 * 127 = 0.508).
  const torch::Tensor w =
      torch::tensor({{1.f, -2.f, 3.f, -254.f}, {0.001f, -0.002f, 0.003f, 0.004f}});
  const auto [q, scale] = quantize_float_tensor_int8(w);
  EXPECT_EQ(q.scalar_type(), torch::kInt8);
  EXPECT_TRUE(torch::equal(q, torch::tensor({{1, -1, 2, -127}, {0, 0, 0, 1}}, torch::kInt8)));
  ASSERT_EQ(scale.scalar_type(), torch::kFloat16);
  ASSERT_EQ(scale.sizes(), (std::vector<int64_t>{2}));
  EXPECT_EQ(scale[0].item<float>(), 2.0f);
  EXPECT_EQ(scale[1].item<float>(), 0.00787353515625f);

  // Dequantized with the fp16 scale: [2, -2, 4, -254] and [0, 0, 0, 0.00787...].
  QuantizedModel model;
  model.entries.push_back({"w", Kind::kInt8PerRow, q, scale, torch::kFloat32});
  const torch::Tensor back = dequantize(model)[0].second;
  EXPECT_TRUE(torch::equal(
      back, torch::tensor({{2.f, -2.f, 4.f, -254.f}, {0.f, 0.f, 0.f, 0.00787353515625f}})));
}

TEST(Int8Test, HandComputedPerTensor) {
  // Same numbers as row 0 above, as a vector: one fp32 scale c/127 (computed in
  // fp64, then rounded to fp32) = 1.999990463256836.
  const auto [q, scale] = quantize_float_tensor_int8(torch::tensor({1.f, -2.f, 3.f, -254.f}));
  EXPECT_TRUE(torch::equal(q, torch::tensor({1, -1, 2, -127}, torch::kInt8)));
  ASSERT_EQ(scale.scalar_type(), torch::kFloat32);
  ASSERT_EQ(scale.dim(), 0);
  EXPECT_EQ(scale.item<float>(), 1.999990463256836f);

  // All zeros: c = 0, so the scale is 1 and every code is 0.
  const auto [zq, zscale] = quantize_float_tensor_int8(torch::zeros({3, 4, 5}));
  EXPECT_EQ(zscale.item<float>(), 1.0f);
  EXPECT_EQ(zq.abs().sum().item<int64_t>(), 0);
}

TEST(Int8Test, ControlPatterns) {
  EXPECT_EQ(kControlTensorPatterns.size(), 15u);  // the union of the entries' lists
  for (const char* name :
       {"blocks.0.attn_scale", "blocks.1.mlp_scale", "blocks.2.resid_mix", "blocks.3.attn.q_gain",
        "skip_weights", "x.skip_weight", "smear.gate", "bigram.scale", "ve_layer_scales.0",
        "ve_shared.scale", "blocks.0.attn.vr_lambda"}) {
    EXPECT_TRUE(is_control_tensor(name)) << name;
  }
  for (const char* name : {"tok_emb.weight", "blocks.0.attn.c_q.weight", "lm_head.weight",
                           "blocks.0.attn.attn_gate.weight", "bigram.proj.weight"}) {
    EXPECT_FALSE(is_control_tensor(name)) << name;
  }
}

TEST(Int8Test, ExportRulesByNameSizeAndDtype) {
  torch::manual_seed(1);
  StateDict dict;
  dict.emplace_back("step", torch::tensor({1, 2, 3}, torch::kInt64));
  dict.emplace_back("mask", torch::tensor({true, false}));
  dict.emplace_back("blocks.0.attn_scale", torch::randn({128}).to(torch::kBFloat16));
  dict.emplace_back("blocks.0.attn.q_gain", torch::randn({4}).to(torch::kFloat16));
  dict.emplace_back("small.weight", torch::randn({256, 256}));  // exactly 65,536: kept
  dict.emplace_back("small_bf16", torch::randn({100}).to(torch::kBFloat16));
  dict.emplace_back("small_f16", torch::randn({10}).to(torch::kFloat16));
  dict.emplace_back("small_f64", torch::randn({10}, torch::kFloat64));
  dict.emplace_back("big.weight", torch::randn({257, 256}));  // 65,792: int8
  dict.emplace_back("big_bf16", torch::randn({300, 300}).to(torch::kBFloat16));
  dict.emplace_back("big3d", torch::randn({2, 200, 200}));
  dict.emplace_back("big1d", torch::randn({70000}));
  dict.emplace_back("blocks.0.resid_mix", torch::randn({2, 40000}));  // control, but big

  const QuantizedModel model = quantize_int8(dict);
  EXPECT_EQ(model.format, "int8_clean_per_row_v1");
  ASSERT_EQ(model.entries.size(), dict.size());
  for (size_t i = 0; i < dict.size(); ++i) EXPECT_EQ(model.entries[i].name, dict[i].first);

  struct Expect {
    const char* name;
    Kind kind;
    torch::ScalarType stored;
  };
  for (const Expect& e : std::vector<Expect>{
           {"step", Kind::kPassthrough, torch::kInt64},
           {"mask", Kind::kPassthrough, torch::kBool},
           {"blocks.0.attn_scale", Kind::kKeptFloat, torch::kFloat32},
           {"blocks.0.attn.q_gain", Kind::kKeptFloat, torch::kFloat32},
           {"small.weight", Kind::kKeptFloat, torch::kFloat16},
           {"small_bf16", Kind::kKeptFloat, torch::kFloat16},
           {"small_f16", Kind::kKeptFloat, torch::kFloat16},
           {"small_f64", Kind::kKeptFloat, torch::kFloat64},
           {"big.weight", Kind::kInt8PerRow, torch::kInt8},
           {"big_bf16", Kind::kInt8PerRow, torch::kInt8},
           {"big3d", Kind::kInt8PerTensor, torch::kInt8},
           {"big1d", Kind::kInt8PerTensor, torch::kInt8},
           {"blocks.0.resid_mix", Kind::kInt8PerRow, torch::kInt8},
       }) {
    const QuantizedEntry& q = entry_named(model, e.name);
    EXPECT_EQ(q.kind, e.kind) << e.name;
    EXPECT_EQ(q.q.scalar_type(), e.stored) << e.name;
    EXPECT_EQ(q.orig_dtype, find_tensor(dict, e.name).scalar_type()) << e.name;
  }
  EXPECT_TRUE(torch::equal(entry_named(model, "step").q, find_tensor(dict, "step")));
  EXPECT_EQ(entry_named(model, "big.weight").scale.sizes(), (std::vector<int64_t>{257}));
  EXPECT_EQ(entry_named(model, "big_bf16").scale.scalar_type(), torch::kFloat16);
  EXPECT_EQ(entry_named(model, "big3d").scale.dim(), 0);
  EXPECT_EQ(entry_named(model, "big3d").scale.scalar_type(), torch::kFloat32);
  EXPECT_FALSE(entry_named(model, "small_f16").scale.defined());

  // Dequantize: same names, order, shapes and original dtypes; exact where kept.
  const StateDict back = dequantize(model);
  ASSERT_EQ(back.size(), dict.size());
  for (size_t i = 0; i < dict.size(); ++i) {
    EXPECT_EQ(back[i].first, dict[i].first);
    EXPECT_EQ(back[i].second.scalar_type(), dict[i].second.scalar_type()) << dict[i].first;
    EXPECT_EQ(back[i].second.sizes(), dict[i].second.sizes()) << dict[i].first;
  }
  for (const char* exact :
       {"step", "mask", "blocks.0.attn_scale", "blocks.0.attn.q_gain", "small_f16", "small_f64"}) {
    EXPECT_TRUE(torch::equal(find_tensor(back, exact), find_tensor(dict, exact))) << exact;
  }
  EXPECT_TRUE(
      torch::equal(find_tensor(back, "small.weight"),
                   find_tensor(dict, "small.weight").to(torch::kFloat16).to(torch::kFloat32)));
}

TEST(Int8Test, RoundTripErrorWithinHalfScaleInsideTheClip) {
  torch::manual_seed(2);
  torch::Tensor w = torch::randn({300, 400});
  w.index_put_({5, 7}, 40.0f);  // an outlier the clip cuts
  const QuantizedModel model = quantize_int8({{"w", w}});
  ASSERT_EQ(model.entries[0].kind, Kind::kInt8PerRow);
  const torch::Tensor back = dequantize(model)[0].second;

  const torch::Tensor clip = at::quantile(w.abs(), kInt8ClipQuantile, 1);
  const torch::Tensor s32 = (clip / 127.0).clamp_min(1.0 / 127.0);
  const torch::Tensor s16 = model.entries[0].scale.to(torch::kFloat32);
  // Quantized with s32 but restored with s16: the bound is s32/2 plus the
  // scale mismatch times the largest code.
  const torch::Tensor bound = s32 / 2 + 127 * (s32 - s16).abs() + 1e-6;
  const torch::Tensor inside = w.abs() <= clip.unsqueeze(1);
  const torch::Tensor err = (w - back).abs();
  EXPECT_TRUE(
      torch::logical_or(err <= bound.unsqueeze(1), inside.logical_not()).all().item<bool>());
  // rank = q * 399 = 398.9994: only each row's maximum lies beyond the clip.
  EXPECT_LE(inside.logical_not().sum(1).max().item<int64_t>(), 1);
  // Outside the clip the value saturates at +-127 codes.
  EXPECT_EQ(model.entries[0].q[5][7].item<int8_t>(), 127);

  const auto errors = max_abs_errors({{"w", w}}, dequantize(model));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NEAR(errors[0].second, (w - back).abs().max().item<double>(), 1e-6);
}

TEST(Int8Test, DoesNotModifyInputAndIsDeterministic) {
  torch::manual_seed(3);
  const torch::Tensor w = torch::randn({300, 300});
  const torch::Tensor copy = w.clone();
  const QuantizedModel a = quantize_int8({{"w", w}});
  const QuantizedModel b = quantize_int8({{"w", w}});
  EXPECT_TRUE(torch::equal(w, copy));
  EXPECT_TRUE(torch::equal(a.entries[0].q, b.entries[0].q));
  EXPECT_TRUE(torch::equal(a.entries[0].scale, b.entries[0].scale));
}

TEST(Int8Test, StatsOnTinyModel) {
  PGOLF_REQUIRE_SHARED();
  const StateDict dict =
      read_safetensors(testing::shared_dir() / "golden/baseline/tiny_weights.safetensors");
  const QuantizedModel model = quantize_int8(dict);
  const QuantStats stats = quant_stats(model);
  EXPECT_EQ(stats.param_count, 592144);
  EXPECT_EQ(stats.num_tensors, 42);
  EXPECT_EQ(stats.num_float_tensors, 1);  // only tok_emb (131,072) exceeds 65,536
  EXPECT_EQ(stats.num_nonfloat_tensors, 0);
  EXPECT_EQ(stats.baseline_tensor_bytes, 592144 * 4);
  // skip_weights fp32 1,024 + tok_emb int8 131,072 + fp16 scales 2,048 + per
  // block: 3 control fp32 (512 + 512 + 1,024) + q_gain 16 + six fp16 matrices
  // (32,768 + 16,384 + 16,384 + 32,768 + 65,536 + 65,536) = 231,440; x4.
  EXPECT_EQ(stats.int8_payload_bytes, 1024 + 131072 + 2048 + 4 * 231440);

  const auto errors = max_abs_errors(dict, dequantize(model));
  ASSERT_EQ(errors.size(), 42u);
  for (const auto& [name, err] : errors) {
    if (is_control_tensor(name)) {
      EXPECT_EQ(err, 0.0) << name;
    }
    EXPECT_LT(err, 0.01) << name;  // weights ~ N(0, 0.05^2): fp16 / int8 error is small
  }
}

TEST(Int8Test, MaxAbsErrorsNeedMatchingNames) {
  const StateDict a = {{"x", torch::zeros({2})}};
  EXPECT_PGOLF_ERROR(max_abs_errors(a, {{"y", torch::zeros({2})}}), "'x' was not restored");
  EXPECT_PGOLF_ERROR(max_abs_errors(a, {{"x", torch::zeros({3})}}), "'x' changed shape");
}

TEST(Int8Test, KindNames) {
  for (const Kind kind :
       {Kind::kPassthrough, Kind::kKeptFloat, Kind::kInt8PerRow, Kind::kInt8PerTensor}) {
    EXPECT_EQ(parse_kind_name(kind_name(kind)), kind);
  }
  EXPECT_FALSE(parse_kind_name("int6").has_value());
}

}  // namespace
}  // namespace pgolf
