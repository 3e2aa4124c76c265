// `pgolf train`, end to end, in the reference's order (train_gpt.py main()):
//
//   set-up    RunContext: device, process group, threads, tokenizer and byte
//             tables, validation stream, the model initialised from SEED
//   training  train/trainer.h: [warm-up, reverted] the loop, then a checkpoint
//   weights   the EMA or SWA mean the entry exports [NON-COMPLIANT VAL_ADAPT=
//             prequant: fine-tuned on the validation split]
//   export    fp32 safetensors, then export/export.h: unbank, prune,
//             calibrate, quantize, compress, size report, and the round trip
//             validated
//   final     eval/final_eval.h: sliding windows and score-first TTT on the
//             round-tripped weights, on every rank
//
// Everything goes into a run folder: config.json, train.log, metrics.jsonl,
// checkpoint.safetensors (for --resume), final_model.safetensors,
// final_model.int8.pgolf (int6 for the entries' schemes), results.json.
#pragma once

#include <cstdint>
#include <filesystem>

#include "config/config.h"
#include "eval/val_bpb.h"

namespace pgolf {

struct TrainSummary {
  int64_t steps = 0;
  double train_time_ms = 0;
  double final_train_loss = 0;
  ValResult pre_export;  // the exported weights' validation before quantisation
  ValResult roundtrip;   // the artifact's validation
  int64_t artifact_bytes = 0;
  std::filesystem::path run_dir;
};

// The run folder for `config` (runtime.run_dir / run_id, default a local
// timestamp and the preset), created.
std::filesystem::path prepare_run_dir(const Config& config);

// resume: continue from run_dir/checkpoint.safetensors (same config required).
TrainSummary run_training(const Config& config, const std::filesystem::path& run_dir,
                          bool resume = false);

}  // namespace pgolf
