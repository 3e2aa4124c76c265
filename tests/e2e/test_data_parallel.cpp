// Data parallel over c10d/Gloo (issue 4): two local ranks of `pgolf train
// --nproc 2` with one micro-step each reach the losses of one process with two
// micro-steps over the same global batch (same data, same order), within
// float tolerance; and the wall-clock stop is agreed.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/fs.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

std::string args(const testing::ScratchDir& scratch, const std::string& id, int accum,
                 const std::string& tokenizer = testing::official_tokenizer().string()) {
  const auto data = testing::shared_dir() / "data";
  return fmt::format(
      "train --preset pr1406-cpu --num-layers 3 --model-dim 64 --num-heads 2 --num-kv-heads 1 "
      "--recur-layers 1 --ve-layers 2 --xsa-last-n 1 --train-seq-len 32 "
      "--train-batch-tokens 1024 --grad-accum-steps {} --iterations 12 --warmdown-iters 4 "
      "--max-wallclock-seconds 0 --train-log-every 1 --val-max-tokens 4097 "
      "--val-batch-size 2048 --qat-threshold 0.6 --threads 1 --data-path {} "
      "--tokenizer-path {} --run-dir {} --run-id {} --quiet",
      accum, (data / "shards").string(), tokenizer, scratch.path().string(), id);
}

TEST(DataParallel, TwoRanksMatchOneProcessWithTheSameGlobalBatch) {
  PGOLF_REQUIRE_SHARED();
  testing::ScratchDir scratch;
  const auto one = testing::run_pgolf(args(scratch, "one", 2));
  ASSERT_EQ(one.exit_code, 0) << one.output;
  const auto two = testing::run_pgolf(args(scratch, "two", 1) + " --nproc 2");
  ASSERT_EQ(two.exit_code, 0) << two.output;
  const auto log = read_file(scratch / "two/train.log");
  EXPECT_NE(log.find("world_size:2 grad_accum_steps:1"), std::string::npos) << log;
  const auto a = testing::train_losses(scratch / "one"), b = testing::train_losses(scratch / "two");
  ASSERT_EQ(a.size(), 12u);
  ASSERT_EQ(b.size(), 12u);
  for (const auto& [step, loss] : a) EXPECT_NEAR(b.at(step), loss, 2e-4 * loss) << "step " << step;
  const auto ra = nlohmann::json::parse(read_file(scratch / "one/results.json"));
  const auto rb = nlohmann::json::parse(read_file(scratch / "two/results.json"));
  EXPECT_NEAR(ra["roundtrip"]["val_bpb"].get<double>(), rb["roundtrip"]["val_bpb"].get<double>(),
              1e-3);
}

TEST(DataParallel, OneLaunchedRankRunsItsProcessGroupAndMatchesOneProcess) {
  PGOLF_REQUIRE_SHARED();
  testing::ScratchDir scratch;
  const auto one = testing::run_pgolf(args(scratch, "one", 2));
  ASSERT_EQ(one.exit_code, 0) << one.output;
  const auto launched = testing::run_pgolf(args(scratch, "launched", 2) + " --nproc 1");
  ASSERT_EQ(launched.exit_code, 0) << launched.output;
  EXPECT_NE(read_file(scratch / "one/train.log").find("process_group:none"), std::string::npos);
  // Gloo here, NCCL on CUDA: every collective of a data-parallel run, over one rank.
  EXPECT_NE(read_file(scratch / "launched/train.log").find("process_group:gloo"),
            std::string::npos);
  EXPECT_EQ(testing::train_losses(scratch / "one"), testing::train_losses(scratch / "launched"));
}

TEST(DataParallel, TwoRanksAgreeOnTheWallClockStop) {
  PGOLF_REQUIRE_SHARED();
  testing::ScratchDir scratch;
  // A cap reached after a few steps: the ranks read the slowest clock one step
  // late and must stop after the same step (else a collective would not pair).
  std::string a = args(scratch, "capped", 1) + " --nproc 2";
  a.replace(a.find("--iterations 12"), 15, "--iterations 100000");
  a.replace(a.find("--max-wallclock-seconds 0"), 25, "--max-wallclock-seconds 2");
  const auto run = testing::run_pgolf(a);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const auto log = read_file(scratch / "capped/train.log");
  EXPECT_NE(log.find("stopping_early: wallclock_cap"), std::string::npos) << log;
}

TEST(DataParallel, AFailingRankFailsTheLaunch) {
  PGOLF_REQUIRE_SHARED();
  testing::ScratchDir scratch;
  // A tokenizer that does not exist: every rank fails, the launcher reports it.
  const auto run = testing::run_pgolf(args(scratch, "bad", 1, "/nonexistent.model") + " --nproc 2");
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.output.find("rank"), std::string::npos) << run.output;
}

}  // namespace
}  // namespace pgolf
