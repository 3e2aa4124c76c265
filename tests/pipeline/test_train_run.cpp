// run_training end to end on a tiny model, pinned: the first 20 training
// losses and the validations of a run with warm-up, clipping, Muon weight
// decay, late QAT and an EMA, as the code before the layering refactor
// produced them (one thread, so the sums run in one order). A change that
// moves any of these numbers fails here first.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "pipeline/train_run.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

Config pinned_config(const std::filesystem::path& run_dir) {
  Config c = testing::trained_tiny_config();
  c.train.iterations = 20;
  c.train.warmdown_iters = 10;
  c.train.train_log_every = 1;
  c.train.warmup_steps = 3;
  c.train.grad_clip_norm = 0.3;
  c.train.muon_wd = 0.04;
  c.train.late_qat = true;
  c.train.qat_threshold = 0.5;
  c.train.ema_enabled = true;
  c.train.ema_decay = 0.9;
  c.runtime.threads = 1;
  c.runtime.run_dir = run_dir.parent_path().string();
  c.runtime.run_id = run_dir.filename().string();
  c.validate();
  return c;
}

// `pgolf train` built from c7cf5b5 (before the layering refactor) with the
// same settings as flags: metrics.jsonl's train_loss of steps 1..20 and
// results.json's val_bpb (two runs of it gave the same bits).
constexpr double kPinnedLosses[20] = {
    6.93369722366333,   6.704901695251465, 7.105100631713867, 7.197818756103516, 6.984872817993164,
    6.776927947998047,  6.45901346206665,  6.489830493927002, 6.414473056793213, 6.095414161682129,
    5.989896297454834,  5.999695777893066, 5.903393268585205, 6.092775821685791, 5.965117931365967,
    5.7979583740234375, 5.885863780975342, 5.929819583892822, 5.883217811584473, 5.614840984344482};
constexpr double kPinnedPreExportBpb = 3.4999141436213574;
constexpr double kPinnedRoundtripBpb = 3.4999198179965063;

TEST(TrainRun, FirstTwentyLossesArePinned) {
  PGOLF_REQUIRE_SHARED();
  testing::ScratchDir scratch;
  const Config config = pinned_config(scratch / "pinned");
  const auto run_dir = prepare_run_dir(config);
  const TrainSummary summary = run_training(config, run_dir);
  ASSERT_EQ(summary.steps, 20);

  std::vector<double> losses;
  std::ifstream metrics(run_dir / "metrics.jsonl");
  for (std::string line; std::getline(metrics, line);) {
    const auto record = nlohmann::json::parse(line);
    if (record.at("event") == "train") losses.push_back(record.at("train_loss").get<double>());
  }
  ASSERT_EQ(losses.size(), 20u);
  for (size_t i = 0; i < losses.size(); ++i) {
    EXPECT_NEAR(losses[i], kPinnedLosses[i], 1e-6 * kPinnedLosses[i]) << "step " << i + 1;
  }
  EXPECT_NEAR(summary.pre_export.val_bpb, kPinnedPreExportBpb, 1e-7);
  EXPECT_NEAR(summary.roundtrip.val_bpb, kPinnedRoundtripBpb, 1e-7);
  // Late QAT switched on where the warm-down crossed 0.5, as it did then.
  EXPECT_NE(read_file(run_dir / "train.log").find("late_qat:enabled step:16 scale:0.4000"),
            std::string::npos);
}

}  // namespace
}  // namespace pgolf
