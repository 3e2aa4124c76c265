// Training checkpoints (issue 4): one safetensors file holding everything a
// run needs to continue exactly -- weights, AdamW moments and steps, Muon
// momentum, EMA shadow, SWA sum, the default generator's state -- with the
// step, training time, data position, QAT switch, wall-clock stop and the
// run's config in its metadata. Written atomically (temp file, fsync, rename,
// fsync of the folder): a kill at any moment leaves the previous checkpoint
// or the new one, never a torn file.
#pragma once

#include <filesystem>
#include <optional>

#include "config/config.h"
#include "data/token_stream.h"
#include "model/gpt.h"
#include "optim/optimizers.h"
#include "train/averaging.h"

namespace pgolf {

inline constexpr const char* kCheckpointFile = "checkpoint.safetensors";

struct TrainingProgress {
  int64_t step = 0;  // optimizer steps done
  double training_time_ms = 0;
  TokenStream::Position data;  // the loader's next token
  bool qat_on = false;
  bool looping = false;                    // #1855's loop already switched on
  std::optional<int64_t> stop_after_step;  // set once the wall-clock cap was reached
};

struct CheckpointParts {
  GPT* model;
  Optimizers* optimizers;
  Ema* ema;  // or nullptr
  Swa* swa;  // or nullptr
};

void save_checkpoint(const std::filesystem::path& path, const Config& config,
                     const CheckpointParts& parts, const TrainingProgress& progress);

// Restores `parts` in place. Refuses a checkpoint written under a different
// model/data/train configuration, naming the first differing setting.
TrainingProgress load_checkpoint(const std::filesystem::path& path, const Config& config,
                                 const CheckpointParts& parts);

// A setting that differs between a run's config and the one it resumes with.
struct ConfigMismatch {
  std::string key;  // the option table's key (num_layers)
  std::string env;  // its environment name (NUM_LAYERS)
  std::string run_value, now_value;
  std::string describe() const;  // "NUM_LAYERS (run: 9, now: 6)"
};

// The settings two configs differ in that matter for continuing a run (every
// model, data and train field; the other groups may change).
std::vector<ConfigMismatch> resume_mismatches(const Config& stored, const Config& now);

}  // namespace pgolf
