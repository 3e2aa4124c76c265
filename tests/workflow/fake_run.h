// Run folders as `pgolf train` writes them, made in milliseconds for the
// report / compare / submit tests: config.json, metrics.jsonl (train events
// with the LR and momentum schedules, val events), results.json, train.log
// and an int8 artifact of a tiny random model.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace pgolf::testing {

struct FakeRun {
  std::string name = "run";
  int64_t seed = 1337;
  double final_val_loss = 3.5;
  bool finished = true;  // results.json and the artifact
  std::string device = "cpu";
  int64_t val_max_tokens = 0;
  // The evaluations after the export: "roundtrip" (none), "sliding" (then
  // final_val_loss - 0.02), "ttt" (sliding, then final_val_loss - 0.03) or
  // "postquant" (a non-compliant val adaptation, then sliding).
  std::string evaluation = "roundtrip";
};

// Writes parent/name and returns its path.
std::filesystem::path write_fake_run(const std::filesystem::path& parent, const FakeRun& run);

}  // namespace pgolf::testing
