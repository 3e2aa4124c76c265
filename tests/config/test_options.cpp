// The option table as the one place pgolf's settings come from: every
// variable the program reads is a row (or a named external), the reference
// in docs/ is generated from it, switches are switches, enums say their names.
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "common/fs.h"
#include "config/options.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

Config parse(std::vector<std::string> argv) {
  CLI::App app;
  ConfigFlags flags(app, "baseline");
  std::reverse(argv.begin(), argv.end());  // CLI11 takes a reversed vector
  app.parse(argv);
  return flags.resolve();
}

TEST(Options, GeneratedReferenceInDocsIsCurrent) {
  const auto path = std::filesystem::path(PGOLF_SOURCE_DIR) / "docs" / "configuration.md";
  ASSERT_TRUE(std::filesystem::exists(path)) << path;
  EXPECT_TRUE(read_file(path) == options_reference())
      << "docs/configuration.md is stale: ./build/pgolf config --reference > docs/configuration.md";
}

TEST(Options, EveryEnvironmentVariableReadIsATableRowOrANamedExternal) {
  std::set<std::string> known;
  Config scratch;
  for (const Option& opt : config_options(scratch)) known.insert(opt.env);
  for (const ExternalVariable& v : external_variables()) {
    std::string names = v.name;
    for (size_t start = 0; start <= names.size();) {
      const size_t end = std::min(names.find(", ", start), names.size());
      known.insert(names.substr(start, end - start));
      start = end + 2;
    }
  }
  const std::regex getenv_call(R"re(getenv\("([A-Z_0-9]+)"\))re");
  int calls = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(
           std::filesystem::path(PGOLF_SOURCE_DIR) / "src")) {
    if (!entry.is_regular_file()) continue;
    const std::string text = read_file(entry.path());
    for (std::sregex_iterator it(text.begin(), text.end(), getenv_call), end; it != end; ++it) {
      ++calls;
      EXPECT_TRUE(known.count((*it)[1].str()))
          << entry.path() << " reads " << (*it)[1] << ", which is neither a row of the option "
          << "table nor an external variable (config/options.cpp)";
    }
  }
  EXPECT_GT(calls, 0);  // the scan sees the reads that are there
  // Rows no other code reads directly: they go through the table.
  for (const char* row : {"PGOLF_FUSED_KERNELS", "PGOLF_RETAIN_HOST_MEMORY", "PGOLF_RUN_DIR",
                          "PGOLF_PYTHON", "MATCHED_FINEWEB_REPO_ID"}) {
    EXPECT_TRUE(known.count(row)) << row;
  }
}

TEST(Options, SwitchesNeedNoValue) {
  EXPECT_TRUE(parse({"--quiet"}).runtime.quiet);
  EXPECT_FALSE(parse({"--quiet=0"}).runtime.quiet);
  EXPECT_TRUE(parse({"--tie-embeddings", "--quiet"}).model.tie_embeddings);
  EXPECT_FALSE(parse({"--tie-embeddings=0"}).model.tie_embeddings);
  EXPECT_FALSE(parse({}).runtime.quiet);
}

TEST(Options, EnumsParseTheirNamesAndListThemOnError) {
  const Config c = parse({"--weight-layout", "banks", "--init-scheme", "orthogonal_unscaled",
                          "--compressor", "auto", "--device", "cuda:1", "--dtype", "bf16"});
  EXPECT_EQ(c.model.weight_layout, WeightLayout::kBanks);
  EXPECT_EQ(c.quant.compressor, Compressor::kAuto);
  EXPECT_EQ(c.runtime.device.str(), "cuda:1");
  EXPECT_EQ(c.runtime.dtype, ComputeDtype::kBf16);
  EXPECT_PGOLF_ERROR(parse({"--weight-layout", "rows"}),
                     "WEIGHT_LAYOUT: 'rows' is not one of blocks | cores | banks");
  EXPECT_PGOLF_ERROR(parse({"--device", "tpu"}), "PGOLF_DEVICE: 'tpu' is not one of cpu | cuda");
  EXPECT_PGOLF_ERROR(parse({"--device", "cuda:x"}), "must be cpu, cuda or cuda:N");
  EXPECT_PGOLF_ERROR(parse({"--device", "cpu:0"}), "must be cpu, cuda or cuda:N");
}

TEST(Options, StoredConfigLeavesOutHowTheProcessRan) {
  Config c;
  c.process.fused_kernels = false;
  const auto stored = stored_config_json(c);
  EXPECT_FALSE(stored.contains("process"));
  EXPECT_FALSE(stored.contains("tools"));
  EXPECT_TRUE(stored.contains("model"));
  EXPECT_EQ(to_json(c).at("process").at("fused_kernels"), "0");
  EXPECT_EQ(config_from_json(stored).model.num_layers, c.model.num_layers);
}

}  // namespace
}  // namespace pgolf
