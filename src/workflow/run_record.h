// A finished (or interrupted) training run, read back from its folder
// (train/trainer.h writes it): config.json, metrics.jsonl, results.json,
// train.log and the artifact. Reports, comparisons and record folders are
// built from these records only, never from a live process.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"

namespace pgolf {

// A metrics.jsonl "train" event.
struct TrainPoint {
  int64_t step = 0;
  int64_t tokens = 0;
  double train_loss = 0;
  double train_time_ms = 0;
  double lr_scale = 0;
  double muon_momentum = 0;
};

// A metrics.jsonl "val" event (validation during training).
struct ValPoint {
  int64_t step = 0;
  int64_t tokens = 0;  // step x train_batch_tokens
  double val_loss = 0;
  double val_bpb = 0;
  double train_time_ms = 0;
  double eval_time_ms = 0;
};

// The score the challenge reads from a run: its last evaluation. Legal TTT
// if the run did it, else the sliding-window evaluation, else the artifact's
// round trip (results.json's "evaluation" and "roundtrip").
struct FinalScore {
  std::string name;  // "legal_ttt" | "sliding_window" | "roundtrip"
  double val_loss = 0;
  double val_bpb = 0;
  double eval_seconds = 0;                 // every evaluation after the export, summed
  bool score_first = true;                 // no token trained on before it was scored
  std::vector<std::string> non_compliant;  // reasons; empty for a legal run
};

struct RunRecord {
  std::filesystem::path dir;
  std::string name;                                   // the folder's name
  Config config;                                      // config.json
  nlohmann::json results = nlohmann::json::object();  // results.json; empty if unfinished
  std::vector<TrainPoint> train;
  std::vector<ValPoint> val;
  std::string log;  // train.log

  bool finished() const { return !results.empty(); }
  // The run's final score; fails unless the run finished.
  FinalScore final_score() const;
  double val_loss() const { return final_score().val_loss; }
  double val_bpb() const { return final_score().val_bpb; }
  // results.json's artifact file, in this folder; empty if none.
  std::filesystem::path artifact_path() const;
};

// Where a run's time went, from its metrics and results: training (the
// challenge's clock), validation during training, GPTQ calibration, and the
// evaluations after the export (round trip, sliding windows, TTT, a
// non-compliant val adaptation). Phases a run did not have are left out.
struct Phase {
  std::string name;
  double seconds = 0;
};
std::vector<Phase> phase_times(const RunRecord& run);

// Reads a run folder; fails with a clear message unless it holds at least
// config.json and metrics.jsonl.
RunRecord load_run(const std::filesystem::path& dir);

// One score to compare: a run folder (results.json), a training log (its
// last `..._exact val_loss:X val_bpb:Y` line, as in the challenge's records/
// folders) or a bare number (val_loss, e.g. a published record's).
struct Score {
  std::string label;
  double val_loss = 0;
  std::optional<double> val_bpb;
};
Score load_score(const std::string& spec);

// The last `..._exact val_loss:X val_bpb:Y` line of a log; nullopt if none.
std::optional<Score> score_from_log(const std::string& log_text);

}  // namespace pgolf
