// inspect_artifact: per-tensor formats, stored bytes, zeros and errors
// against the originals; totals and size lines.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "artifact/inspect.h"
#include "quant/prune.h"
#include "quant/scheme.h"
#include "tests/quant/single_thread.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

class InspectTest : public testing::SingleThreadTest {};

StateDict sample() {
  torch::manual_seed(11);
  StateDict d;
  d.emplace_back("blocks.0.attn.c_q.weight", torch::randn({96, 100}) * 0.05);  // int6
  d.emplace_back("blocks.0.mlp.fc.weight", torch::randn({128, 100}) * 0.05);   // int5
  d.emplace_back("tok_emb.weight", torch::randn({64, 32}) * 0.05);             // fp16 (small)
  d.emplace_back("blocks.0.attn_scale", torch::rand({32}));                    // fp16 (small)
  return d;
}

TEST_F(InspectTest, ReportsFormatsBytesZerosAndErrors) {
  StateDict weights = sample();
  StateDict pruned;
  for (const auto& [n, t] : weights) pruned.emplace_back(n, t.clone());
  magnitude_prune_tensor(pruned[1].second, 0.25);
  QuantScheme scheme = quant_scheme("pr461");
  scheme.storage = CodeStorage::kBitPacked;
  const QuantizedModel q = quantize_model(pruned, scheme);
  const LoadedArtifact loaded =
      decode_artifact(encode_artifact(q, {{"model", {{"num_layers", 1}}}}, Codec::kZstd, 22));

  const ArtifactReport without = inspect_artifact(loaded);
  ASSERT_EQ(without.tensors.size(), 4u);
  EXPECT_FALSE(without.tensors[0].max_abs_error.has_value());
  EXPECT_EQ(without.tensors[0].format, "int6");
  EXPECT_EQ(without.tensors[0].bits, 6);
  EXPECT_EQ(without.tensors[1].format, "int5");
  EXPECT_EQ(without.tensors[1].bits, 5);
  EXPECT_EQ(without.tensors[2].format, "fp16");
  // Packed codes + fp16 row scales.
  EXPECT_EQ(without.tensors[0].stored_bytes, (96 * 100 * 6 + 7) / 8 + 96 * 2);
  EXPECT_EQ(without.tensors[1].stored_bytes, (128 * 100 * 5 + 7) / 8 + 128 * 2);
  EXPECT_EQ(without.stored_bytes, static_cast<int64_t>(loaded.info.uncompressed_bytes));
  EXPECT_GE(without.tensors[1].zero_frac, 0.25);  // pruned, plus codes that round to 0
  EXPECT_GT(without.tensors[1].entropy_bits, 0.0);
  EXPECT_LE(without.tensors[1].entropy_bits, 5.0);
  EXPECT_EQ(without.params, 96 * 100 + 128 * 100 + 64 * 32 + 32);
  EXPECT_EQ(without.size.model_bytes, static_cast<int64_t>(loaded.info.file_bytes));
  EXPECT_NEAR(without.bits_per_param(), 8.0 * loaded.info.file_bytes / without.params, 1e-9);
  EXPECT_GT(without.compression_ratio(), 1.0);
  const std::string text = format_report(without);
  EXPECT_NE(text.find("quantization error: n/a"), std::string::npos) << text;
  EXPECT_NE(text.find("blocks.0.mlp.fc.weight"), std::string::npos);
  EXPECT_NE(text.find("Total submission size: model"), std::string::npos);

  // Against the unpruned originals: int6 row-max error is at most half a step
  // (scale = row max / 31), and the pruned tensor's error includes its pruning.
  const ArtifactReport with = inspect_artifact(loaded, &weights);
  ASSERT_TRUE(with.tensors[0].max_abs_error.has_value());
  const double row_max = weights[0].second.abs().max().item<double>();
  EXPECT_LE(*with.tensors[0].max_abs_error, row_max / 31 / 2 * 1.01);
  EXPECT_GT(*with.tensors[1].rel_rms_error, *with.tensors[0].rel_rms_error);
  EXPECT_LT(*with.tensors[2].rel_rms_error, 1e-3);  // fp16
  EXPECT_EQ(format_report(with).find("quantization error: n/a"), std::string::npos);
}

}  // namespace
}  // namespace pgolf
