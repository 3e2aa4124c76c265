// Presets, the environment/flag table, validation messages and JSON round trip.
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "config/options.h"
#include "config/presets.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

// Sets an environment variable for the lifetime of the object.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) { ::setenv(name, value, 1); }
  ~ScopedEnv() { ::unsetenv(name_); }

 private:
  const char* name_;
};

Config parse(std::vector<std::string> argv, const std::string& default_preset = "baseline") {
  CLI::App app;
  ConfigFlags flags(app, default_preset);
  std::reverse(argv.begin(), argv.end());  // CLI11 takes a reversed vector
  app.parse(argv);
  return flags.resolve();
}

TEST(Config, BaselinePresetIsTheReferenceDefaults) {
  const Config c = preset("baseline");
  EXPECT_EQ(c.model.num_layers, 9);
  EXPECT_EQ(c.model.model_dim, 512);
  EXPECT_EQ(c.model.num_heads, 8);
  EXPECT_EQ(c.model.num_kv_heads, 4);
  EXPECT_EQ(c.model.mlp_mult, 2);
  EXPECT_EQ(c.train.train_batch_tokens, 524288);
  EXPECT_EQ(c.train.train_seq_len, 1024);
  EXPECT_EQ(c.train.iterations, 20000);
  EXPECT_EQ(c.train.warmdown_iters, 1200);
  EXPECT_DOUBLE_EQ(c.train.matrix_lr, 0.04);
  EXPECT_DOUBLE_EQ(c.train.tied_embed_lr, 0.05);
  EXPECT_DOUBLE_EQ(c.train.muon_momentum, 0.95);
  EXPECT_DOUBLE_EQ(c.train.max_wallclock_seconds, 600.0);
  EXPECT_NO_THROW(c.validate());
  EXPECT_NO_THROW(preset("cpu").validate());
}

TEST(Config, UnknownPresetListsKnownOnes) {
  EXPECT_PGOLF_ERROR(preset("nope"), "unknown preset 'nope' (known: baseline, cpu");
}

TEST(Config, EnvironmentVariablesMapOntoFields) {
  ScopedEnv layers("NUM_LAYERS", "3");
  ScopedEnv lr("MATRIX_LR", "0.02");
  ScopedEnv tie("TIE_EMBEDDINGS", "0");
  const Config c = parse({});
  EXPECT_EQ(c.model.num_layers, 3);
  EXPECT_DOUBLE_EQ(c.train.matrix_lr, 0.02);
  EXPECT_FALSE(c.model.tie_embeddings);
}

TEST(Config, FlagsOverrideEnvironmentAndPreset) {
  ScopedEnv layers("NUM_LAYERS", "3");
  const Config c = parse({"--preset", "cpu", "--num-layers", "5", "--model-dim", "128"});
  EXPECT_EQ(c.preset, "cpu");
  EXPECT_EQ(c.model.num_layers, 5);
  EXPECT_EQ(c.model.model_dim, 128);
  EXPECT_EQ(c.train.train_seq_len, preset("cpu").train.train_seq_len);
}

TEST(Config, ImpossibleValuesAreRejectedWithTheirName) {
  EXPECT_PGOLF_ERROR(parse({"--model-dim", "500"}),
                     "MODEL_DIM=500 must be divisible by NUM_HEADS=8");
  EXPECT_PGOLF_ERROR(parse({"--num-kv-heads", "3"}),
                     "NUM_HEADS=8 must be divisible by NUM_KV_HEADS=3");
  EXPECT_PGOLF_ERROR(parse({"--num-layers", "abc"}), "NUM_LAYERS: 'abc' is not an integer");
  EXPECT_PGOLF_ERROR(parse({"--matrix-lr", "1e"}), "MATRIX_LR: '1e' is not a number");
  EXPECT_PGOLF_ERROR(parse({"--tie-embeddings=yes"}), "TIE_EMBEDDINGS: 'yes' is not a boolean");
  EXPECT_PGOLF_ERROR(parse({"--logit-softcap", "0"}), "LOGIT_SOFTCAP=0 must be positive");
  EXPECT_PGOLF_ERROR(parse({"--train-batch-tokens", "1000"}), "must be a positive multiple of");
  EXPECT_PGOLF_ERROR(parse({"--compressor", "gzip"}), "COMPRESSOR: 'gzip' is not one of");
  EXPECT_PGOLF_ERROR(parse({"--vocab-size", "70000"}), "VOCAB_SIZE=70000");
  EXPECT_PGOLF_ERROR(parse({"--dtype", "fp16"}),
                     "PGOLF_DTYPE: 'fp16' is not one of auto | fp32 | bf16");
  EXPECT_PGOLF_ERROR(parse({"--muon-momentum", "1.0"}), "MUON_MOMENTUM=1");
  ScopedEnv bad("ITERATIONS", "-5");
  EXPECT_PGOLF_ERROR(parse({}), "ITERATIONS=-5 must be >= 0");
}

TEST(Config, ExplicitlySetKnowsFlagsAndEnvironment) {
  CLI::App app;
  ConfigFlags flags(app, "baseline");
  std::vector<std::string> argv = {"128", "--model-dim"};
  app.parse(argv);
  ScopedEnv seq("TRAIN_SEQ_LEN", "64");
  EXPECT_TRUE(flags.explicitly_set("model_dim"));
  EXPECT_TRUE(flags.explicitly_set("train_seq_len"));
  EXPECT_FALSE(flags.explicitly_set("num_layers"));
}

TEST(Config, JsonRoundTripPreservesEveryField) {
  Config c = preset("cpu");
  c.model.qk_gain_init = 2.25;
  c.train.seed = 42;
  c.data.val_files = "x/val_*.bin";
  const Config back = config_from_json(to_json(c));
  EXPECT_EQ(to_json(back), to_json(c));
  EXPECT_EQ(back.preset, "cpu");
  EXPECT_DOUBLE_EQ(back.model.qk_gain_init, 2.25);
  EXPECT_EQ(back.train.seed, 42);
}

TEST(Config, DescribeListsEveryEnvironmentName) {
  const std::string text = describe(preset("baseline"));
  for (const char* name : {"NUM_LAYERS", "MODEL_DIM", "MATRIX_LR", "TRAIN_SEQ_LEN", "DATA_PATH"}) {
    EXPECT_NE(text.find(name), std::string::npos) << name;
  }
}

}  // namespace
}  // namespace pgolf

namespace pgolf {
namespace {

TEST(QuantConfig, PresetsCarryTheirEntrysExport) {
  const Config p1406 = preset("pr1406");
  EXPECT_EQ(p1406.quant.format, SchemeId::kPr1406);
  EXPECT_TRUE(p1406.quant.gptq);
  EXPECT_EQ(p1406.quant.gptq_calib, CalibrationSource::kTrain);
  EXPECT_EQ(p1406.quant.gptq_calib_batches, 256);
  EXPECT_EQ(p1406.quant.compressor, Compressor::kLzma);
  EXPECT_DOUBLE_EQ(p1406.quant.resolved_prune_frac(), 0.0);
  for (const char* name : {"pr461", "pr456", "pr562"}) {
    const Config c = preset(name);
    EXPECT_EQ(name_of(c.quant.format), name);
    EXPECT_FALSE(c.quant.gptq) << name;
    EXPECT_DOUBLE_EQ(c.quant.prune_frac, 0.03) << name;
    EXPECT_EQ(c.quant.compressor, Compressor::kZstd) << name;
  }
  for (const char* name : {"baseline", "cpu"}) {
    const Config c = preset(name);
    EXPECT_EQ(c.quant.format, SchemeId::kInt8Baseline) << name;
    EXPECT_EQ(c.quant.compressor, Compressor::kZlib) << name;
    EXPECT_DOUBLE_EQ(c.quant.resolved_prune_frac(), 0.0) << name;
  }
}

TEST(QuantConfig, OptionsParseAndImpossibleOnesAreRejected) {
  const Config c = parse(
      {"--quant-format", "pr562", "--code-storage", "packed", "--prune-frac", "0.05", "--gptq",
       "--gptq-calib", "selfgen", "--gptq-calib-batches", "64", "--target-bytes", "15000000"},
      "cpu");
  EXPECT_EQ(c.quant.format, SchemeId::kPr562);
  EXPECT_EQ(c.quant.code_storage, CodeStorage::kBitPacked);
  EXPECT_DOUBLE_EQ(c.quant.resolved_prune_frac(), 0.05);
  EXPECT_TRUE(c.quant.gptq);
  EXPECT_EQ(c.quant.gptq_calib, CalibrationSource::kSelfgen);
  EXPECT_EQ(c.quant.gptq_calib_batches, 64);
  EXPECT_EQ(c.quant.target_bytes, 15'000'000);
  EXPECT_PGOLF_ERROR(parse({"--quant-format", "int4"}),
                     "QUANT_FORMAT: 'int4' is not one of int8 | pr1406 | pr461 | pr456 | pr562");
  EXPECT_PGOLF_ERROR(parse({"--code-storage", "bits"}),
                     "CODE_STORAGE: 'bits' is not one of int8 | packed");
  EXPECT_PGOLF_ERROR(parse({"--gptq"}), "GPTQ=1 needs QUANT_FORMAT pr1406, pr562 or pr1855");
  EXPECT_PGOLF_ERROR(parse({"--matrix-bits", "8"}),
                     "MATRIX_BITS=8 and EMBED_BITS=7 must be 5, 6 or 7");
  EXPECT_PGOLF_ERROR(parse({"--lqer-rank", "0"}), "LQER_RANK=0 must be > 0");
  EXPECT_PGOLF_ERROR(parse({"--mlp-clip-sigmas", "-1"}), "the *_CLIP_SIGMAS must be positive");
  EXPECT_PGOLF_ERROR(
      parse({"--compressor", "zpaq"}),
      "COMPRESSOR: 'zpaq' is not one of zlib | zstd | lzma | brotli | pergroup | auto");
  EXPECT_PGOLF_ERROR(parse({"--gptq-lite", "--quant-format", "pr1406"}), "GPTQ_LITE");
  EXPECT_PGOLF_ERROR(parse({"--gptq-calib", "val"}), "GPTQ_CALIB: 'val' is not one of");
  EXPECT_PGOLF_ERROR(parse({"--prune-frac", "1.5"}), "PRUNE_FRAC=1.5");
  ScopedEnv env("QUANT_FORMAT", "pr456");
  EXPECT_EQ(parse({}).quant.format, SchemeId::kPr456);
}

}  // namespace
}  // namespace pgolf
