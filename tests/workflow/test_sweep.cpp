// The competitor's workflow end to end on ../shared/data: `pgolf sweep` trains
// two seeds of a tiny model, then `compare`, `report` and `submit` use them.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

std::string tiny_train_args() {
  const auto data = testing::shared_dir() / "data";
  return fmt::format(
      "--preset cpu --num-layers 2 --model-dim 64 --num-heads 2 --num-kv-heads 1 "
      "--train-seq-len 64 --train-batch-tokens 1024 --iterations 30 --warmdown-iters 10 "
      "--max-wallclock-seconds 0 --train-log-every 5 --val-loss-every 10 --val-max-tokens 4096 "
      "--val-batch-size 4096 --data-path {} --tokenizer-path {} --quiet --threads 1",
      (data / "shards").string(), testing::official_tokenizer().string());
}

TEST(SweepWorkflow, SeedsThenCompareReportSubmit) {
  PGOLF_REQUIRE_SHARED();
  testing::ScratchDir scratch;
  const auto sweep = testing::run_pgolf(fmt::format("sweep --seeds 1,2 --name t --run-dir {} {}",
                                                    scratch.path().string(), tiny_train_args()));
  ASSERT_EQ(sweep.exit_code, 0) << sweep.output;
  EXPECT_NE(sweep.output.find("sweep: seed 2 (2/2) -> " + (scratch / "t_seed2").string()),
            std::string::npos)
      << sweep.output;
  EXPECT_NE(sweep.output.find("\nmean "), std::string::npos) << sweep.output;
  EXPECT_NE(sweep.output.find("\nstd "), std::string::npos) << sweep.output;
  const std::string a = (scratch / "t_seed1").string(), b = (scratch / "t_seed2").string();
  const auto config = nlohmann::json::parse(read_file(scratch / "t_seed2" / "config.json"));
  EXPECT_EQ(config["train"]["seed"], "2");
  ASSERT_TRUE(std::filesystem::exists(scratch / "t_seed1" / "results.json"));

  // Against the uniform model's loss, ln(1024) = 6.93: a certain improvement.
  const auto compare =
      testing::run_pgolf(fmt::format("compare {} {} --against 6.9315 --check", a, b));
  EXPECT_EQ(compare.exit_code, 0) << compare.output;
  EXPECT_NE(compare.output.find("t_seed1"), std::string::npos) << compare.output;

  const auto report =
      testing::run_pgolf(fmt::format("report {} {} --out {}", a, b, (scratch / "r.html").string()));
  ASSERT_EQ(report.exit_code, 0) << report.output;
  const std::string html = read_file(scratch / "r.html");
  EXPECT_NE(html.find("t_seed2"), std::string::npos);
  EXPECT_NE(html.find("attention"), std::string::npos);  // the artifact's groups

  const auto submit = testing::run_pgolf(
      fmt::format("submit {} {} --out {} --no-source", a, b, (scratch / "rec").string()));
  ASSERT_EQ(submit.exit_code, 0) << submit.output;
  EXPECT_NE(submit.output.find("[ok] Tokenizer: the challenge's fineweb_1024_bpe.model"),
            std::string::npos)
      << submit.output;
  EXPECT_TRUE(std::filesystem::exists(scratch / "rec" / "train_seed1.log"));

  const auto bad = testing::run_pgolf("sweep --seeds 1 --seed 3");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("pgolf sweep sets --seed itself"), std::string::npos) << bad.output;
}

}  // namespace
}  // namespace pgolf
