// `pgolf submit`: the record folder's files and fields, as the challenge's
// records/ folders have them, and the checked size and legality statements.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/code_size.h"
#include "common/fs.h"
#include "tests/test_util.h"
#include "tests/workflow/fake_run.h"
#include "workflow/submit.h"

namespace pgolf {
namespace {

TEST(Submit, WritesARecordFolder) {
  testing::ScratchDir scratch;
  std::vector<RunRecord> runs;
  const double losses[] = {2.060, 2.061, 2.059};
  const int64_t seeds[] = {1337, 42, 2025};
  for (int i = 0; i < 3; ++i) {
    runs.push_back(load_run(testing::write_fake_run(
        scratch.path(),
        {.name = fmt::format("r{}", i), .seed = seeds[i], .final_val_loss = losses[i]})));
  }
  SubmitOptions o;
  o.out = scratch / "record";
  o.name = "Tiny test record";
  o.author = "Ada";
  o.github_id = "ada";
  o.against = {"2.07269931"};
  o.source_dir = PGOLF_SOURCE_DIR;
  write_record_folder(runs, o);

  const auto json = nlohmann::json::parse(read_file(o.out / "submission.json"));
  for (const char* key : {"author", "github_id", "name", "blurb", "date", "val_loss", "val_bpb",
                          "bytes_total", "bytes_code", "seeds", "seed_results", "track"}) {
    EXPECT_TRUE(json.contains(key)) << key;
  }
  EXPECT_EQ(json["author"], "Ada");
  EXPECT_NEAR(json["val_loss"].get<double>(), 2.060, 1e-12);
  EXPECT_NEAR(json["val_loss_std"].get<double>(), 0.001, 1e-12);
  EXPECT_EQ(json["seeds"], nlohmann::json({1337, 42, 2025}));
  EXPECT_EQ(json["seed_results"]["42"]["log"], "train_seed42.log");
  EXPECT_EQ(json["bytes_code"], code_size().bytes);
  EXPECT_LT(json["significance"]["p_value"].get<double>(), 0.01);
  EXPECT_FALSE(json["compliance"]["all_checks_pass"].get<bool>());  // CPU runs

  const std::string readme = read_file(o.out / "README.md");
  for (const char* needle :
       {"# Tiny test record", "**val_bpb: 1.23600**", "## Method", "`NUM_LAYERS=2`",
        "torchrun --standalone --nproc_per_node=8 --no-python ./build/pgolf train --preset cpu",
        "for SEED in 1337 42 2025", "| 42 | 100 | 5.0 s | roundtrip | 2.06100000 |", "| **Mean** |",
        "| **Std** |", "## Significance", "**p = ", "meets the challenge's p < 0.01",
        "## Size and legality", "- [x] Size: the largest artifact + code is",
        "- [ ] Hardware: trained on CPU", "- [x] Scored on the whole validation split",
        "bundled and compressed", "`train_seed2025.log`"}) {
    EXPECT_NE(readme.find(needle), std::string::npos) << needle << "\n" << readme;
  }
  EXPECT_EQ(read_file(o.out / "train_seed1337.log"), runs[0].log);
  EXPECT_TRUE(std::filesystem::exists(o.out / "pgolf" / "src" / "cli" / "main.cpp"));
  // The whole source that trained the runs, not only the counted evaluator.
  EXPECT_TRUE(std::filesystem::exists(o.out / "pgolf" / "src" / "train" / "trainer.cpp"));
  EXPECT_TRUE(std::filesystem::exists(o.out / "pgolf" / "tools" / "code_bundle.cpp"));
  EXPECT_FALSE(std::filesystem::exists(o.out / "pgolf" / "src" / "workflow"));

  // Not over an existing record, and never from an unfinished run.
  EXPECT_PGOLF_ERROR(write_record_folder(runs, o), "exists and is not empty");
  o.out = scratch / "record2";
  runs.push_back(
      load_run(testing::write_fake_run(scratch.path(), {.name = "x", .finished = false})));
  EXPECT_PGOLF_ERROR(write_record_folder(runs, o), "did not finish");
}

TEST(Submit, LegalityStatementsCatchAPrefixScore) {
  testing::ScratchDir scratch;
  const RunRecord run = load_run(
      testing::write_fake_run(scratch.path(), {.device = "cuda", .val_max_tokens = 65536}));
  const auto statements = legality_statements({run});
  bool prefix_flagged = false, gpu_ok = false;
  for (const Statement& s : statements) {
    if (s.text.find("prefix of the validation split") != std::string::npos) prefix_flagged = !s.ok;
    if (s.text.find("Hardware: CUDA") != std::string::npos) gpu_ok = s.ok;
  }
  EXPECT_TRUE(prefix_flagged);
  EXPECT_TRUE(gpu_ok);
}

TEST(Submit, LegalityStatementsCatchANonCompliantEvaluation) {
  testing::ScratchDir scratch;
  auto statement = [&](const std::string& kind) {
    const RunRecord run =
        load_run(testing::write_fake_run(scratch.path(), {.name = kind, .evaluation = kind}));
    for (const Statement& s : legality_statements({run})) {
      if (s.text.find("test-time training") != std::string::npos ||
          s.text.find("Test-time training") != std::string::npos ||
          s.text.find("NON-COMPLIANT") != std::string::npos) {
        return s;
      }
    }
    return Statement{false, "none"};
  };
  const Statement ttt = statement("ttt");
  EXPECT_TRUE(ttt.ok);
  EXPECT_NE(ttt.text.find("score-first"), std::string::npos) << ttt.text;
  EXPECT_TRUE(statement("sliding").ok);
  const Statement cheat = statement("postquant");
  EXPECT_FALSE(cheat.ok);
  EXPECT_NE(cheat.text.find("VAL_ADAPT=postquant"), std::string::npos) << cheat.text;
}

TEST(SubmitCommand, WritesTheFolderFromTheCommandLine) {
  testing::ScratchDir scratch;
  const auto a = testing::write_fake_run(scratch.path(), {.name = "a", .seed = 1});
  const auto b = testing::write_fake_run(scratch.path(), {.name = "b", .seed = 2});
  const auto run =
      testing::run_pgolf(fmt::format("submit {} {} --out {} --author Ada --no-source", a.string(),
                                     b.string(), (scratch / "rec").string()));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("[ok] Size:"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("[!!] Hardware: trained on CPU"), std::string::npos) << run.output;
  EXPECT_TRUE(std::filesystem::exists(scratch / "rec" / "train_seed2.log"));
  EXPECT_FALSE(std::filesystem::exists(scratch / "rec" / "pgolf"));
}

}  // namespace
}  // namespace pgolf
