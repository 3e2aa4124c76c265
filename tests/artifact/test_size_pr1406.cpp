// Size accounting at full size: #1406's model (26.9 M parameters) from its
// seeded init, exported by its scheme (unbanked, int6 attention + MLP, int8
// embeddings, fp16 small tensors, lzma 9) fits the 16,000,000-byte cap with
// pgolf's code bytes. Quantized with the per-matrix clip search, #1406's
// Hessian-free path: full GPTQ at this size (68 matrices, 5 clip passes
// each) takes minutes on 2 CPU cores, too slow for the suite.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "artifact/artifact.h"
#include "common/code_size.h"
#include "config/presets.h"
#include "export/export.h"
#include "model/weights.h"
#include "tests/quant/single_thread.h"

namespace pgolf {
namespace {

class FullSizeTest : public testing::SingleThreadTest {};

TEST_F(FullSizeTest, Pr1406FromItsInitFitsTheDecimalCap) {
  const Config config = preset("pr1406");
  torch::manual_seed(static_cast<uint64_t>(config.train.seed));
  GPT model(config.model);
  ASSERT_EQ(parameter_count(model), 26'928'220);
  const StateDict weights = export_state_dict(model);
  const QuantizedModel quantized = quantize_model(weights, scheme_for(config.quant));
  int64_t int6 = 0;
  for (const auto& e : quantized.entries) int6 += e.bits == 6 ? e.q.numel() : 0;
  EXPECT_GT(int6, 25'000'000);  // every attention and MLP matrix
  const std::string bytes = encode_for_config(quantized, config);
  const SizeReport size = size_report(static_cast<int64_t>(bytes.size()));
  EXPECT_EQ(size.code_bytes, code_size().bytes);
  EXPECT_TRUE(size.fits()) << size.describe();
  RecordProperty("artifact_bytes", static_cast<int>(bytes.size()));
  std::printf("pr1406 from init: %s\n", size.describe().c_str());
}

}  // namespace
}  // namespace pgolf
