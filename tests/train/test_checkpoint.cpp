// Checkpoints and --resume (issue 4): a run killed (SIGKILL) in the middle of
// writing a checkpoint resumes from the previous one and then produces exactly
// the losses, weights and score of the uninterrupted run (also across #1855's
// loop switch); a different configuration is refused.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/fs.h"
#include "io/safetensors.h"
#include "tests/test_util.h"
#include "train/checkpoint.h"

namespace pgolf {
namespace {

// A tiny run with every recipe piece on: EMA, SWA (from step 14), late QAT
// (from step 11), Muon and AdamW decay, a checkpoint every 4 steps.
std::string run_args(const testing::ScratchDir& scratch, const std::string& run_id) {
  const auto data = testing::shared_dir() / "data";
  return fmt::format(
      "train --preset cpu --num-layers 2 --model-dim 64 --num-heads 2 --num-kv-heads 1 "
      "--train-seq-len 32 --train-batch-tokens 512 --iterations 16 --warmdown-iters 6 "
      "--max-wallclock-seconds 0 --val-loss-every 0 --train-log-every 1 --warmup-steps 0 "
      "--val-max-tokens 4097 --val-batch-size 4096 --ema-enabled --swa-enabled "
      "--swa-every 2 --swa-start-frac 0.5 --late-qat --qat-threshold 0.9 --muon-wd 0.04 "
      "--adam-wd 0.01 --checkpoint-every 4 --data-path {} --tokenizer-path {} --run-dir {} "
      "--run-id {} --quiet",
      (data / "shards").string(), testing::official_tokenizer().string(), scratch.path().string(),
      run_id);
}

// #1855's stack at toy size with its loop switched on at step 8 (half of 16):
// a resume from step 8 switches it on right after, one from step 12 restores it.
std::string loop_run_args(const testing::ScratchDir& scratch, const std::string& run_id) {
  const auto data = testing::shared_dir() / "data";
  return fmt::format(
      "train --preset pr1855-cpu --vocab-size 1024 --num-layers 5 --model-dim 64 --num-heads 2 "
      "--num-kv-heads 1 --loop-start 1 --loop-end 2 --parallel-start-layer 3 --xsa-last-n 5 "
      "--train-seq-len 32 --max-doc-len 32 --train-batch-tokens 512 --iterations 16 "
      "--max-wallclock-seconds 0 --gptq-reserve-seconds 0 --enable-looping-at 0.5 "
      "--val-loss-every 0 --train-log-every 1 --warmup-steps 0 --val-max-tokens 4097 "
      "--val-batch-size 4096 --gptq-calib-batches 2 --checkpoint-every 4 --data-path {} "
      "--tokenizer-path {} --run-dir {} --run-id {} --quiet",
      (data / "shards").string(), testing::official_tokenizer().string(), scratch.path().string(),
      run_id);
}

struct KillCase {
  bool loop;  // the #1855 run (loop_run_args) or the recipe run (run_args)
  int write;  // killed during this checkpoint write
};

class KilledWhileCheckpointing : public ::testing::TestWithParam<KillCase> {};

TEST_P(KilledWhileCheckpointing, ResumesToTheUninterruptedResult) {
  PGOLF_REQUIRE_SHARED();
  testing::ScratchDir scratch;
  const auto args = GetParam().loop ? loop_run_args : run_args;
  const auto full = testing::run_pgolf(args(scratch, "full"));
  ASSERT_EQ(full.exit_code, 0) << full.output;
  const std::string switched =
      GetParam().loop ? "layer_loop:enabled step:8" : "late_qat:enabled step:11";
  EXPECT_NE(read_file(scratch / "full/train.log").find(switched), std::string::npos);

  // Killed half-way through its N-th checkpoint write (N=3: step 12, N=4: step 16).
  const int write = GetParam().write;
  ::setenv("PGOLF_FAULT_CHECKPOINT_WRITE", std::to_string(write).c_str(), 1);
  const auto crashed = testing::run_pgolf(args(scratch, "crashed"));
  ::unsetenv("PGOLF_FAULT_CHECKPOINT_WRITE");
  EXPECT_NE(crashed.exit_code, 0);
  const auto run = scratch / "crashed";
  // The last complete checkpoint is intact; the torn temporary file is not it.
  SafetensorsMetadata meta;
  read_safetensors(run / kCheckpointFile, &meta);
  const auto progress = nlohmann::json::parse(meta.at("pgolf_checkpoint"));
  EXPECT_EQ(progress.at("step").get<int64_t>(), 4 * (write - 1));
  EXPECT_EQ(progress.at(GetParam().loop ? "looping" : "qat_on").get<bool>(), write == 4);

  const auto resumed = testing::run_pgolf("train --resume " + run.string() + " --quiet");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(read_file(run / "train.log").find(fmt::format("resumed: step:{}", 4 * (write - 1))),
            std::string::npos);

  const auto a = testing::train_losses(scratch / "full"), b = testing::train_losses(run);
  ASSERT_EQ(a.size(), 16u);
  ASSERT_EQ(b.size(), 16u);
  for (const auto& [step, loss] : a) EXPECT_EQ(b.at(step), loss) << "step " << step;
  const auto ra = nlohmann::json::parse(read_file(scratch / "full/results.json"));
  const auto rb = nlohmann::json::parse(read_file(run / "results.json"));
  EXPECT_EQ(ra["roundtrip"]["val_bpb"].get<double>(), rb["roundtrip"]["val_bpb"].get<double>());
  EXPECT_EQ(ra["pre_export"]["val_bpb"].get<double>(), rb["pre_export"]["val_bpb"].get<double>());
  const auto wa = read_safetensors(scratch / "full/final_model.safetensors");
  const auto wb = read_safetensors(run / "final_model.safetensors");
  for (size_t i = 0; i < wa.size(); ++i) EXPECT_TRUE(torch::equal(wa[i].second, wb[i].second));
}

INSTANTIATE_TEST_SUITE_P(Checkpoint, KilledWhileCheckpointing,
                         ::testing::Values(KillCase{false, 3}, KillCase{false, 4},
                                           KillCase{true, 3}, KillCase{true, 4}),
                         [](const auto& info) {
                           return std::string(info.param.loop ? "Pr1855Loop" : "Recipe") + "Write" +
                                  std::to_string(info.param.write);
                         });

TEST(Resume, RefusesADifferentConfiguration) {
  PGOLF_REQUIRE_SHARED();
  testing::ScratchDir scratch;
  ASSERT_EQ(testing::run_pgolf(run_args(scratch, "r")).exit_code, 0);
  const auto refused =
      testing::run_pgolf("train --resume " + (scratch / "r").string() + " --model-dim 32");
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.output.find("different configuration: MODEL_DIM (run: 64, now: 32)"),
            std::string::npos)
      << refused.output;
  const auto missing = testing::run_pgolf("train --resume " + (scratch / "nope").string());
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.output.find("no config.json"), std::string::npos) << missing.output;
}

}  // namespace
}  // namespace pgolf
