// The training run, end to end, in the reference's order (train_gpt.py main()):
//
//   set-up: device, seed, tokenizer + byte tables, validation stream, model,
//           optimizers; warm-up steps that are then reverted
//   loop:   [validate] -> lr scale s [-> late QAT on] -> A micro-steps
//           (forward, backward of loss/A) -> momentum, lrs -> [clip] -> step
//           -> [EMA] -> [SWA] -> log -> wall-clock check -> [checkpoint]
//   after:  checkpoint; export the EMA or the SWA mean where the entry does
//   export: fp32 safetensors, then train/export.h: unbank, prune, calibrate,
//           quantize by QUANT_FORMAT's scheme, compress, size report, and
//           validation of the round-tripped artifact
//
// Everything goes into a run folder: config.json, train.log, metrics.jsonl,
// final_model.safetensors, final_model.int8.pgolf (int6 for the entries'
// schemes), results.json, and
// checkpoint.safetensors (train/checkpoint.h) for --resume.
#pragma once

#include <filesystem>
#include <functional>

#include "common/log.h"
#include "config/config.h"
#include "data/token_stream.h"
#include "eval/val_bpb.h"
#include "model/gpt.h"
#include "quant/int8.h"
#include "train/distributed.h"
#include "train/optimizers.h"

namespace pgolf {

struct TrainSummary {
  int64_t steps = 0;
  double train_time_ms = 0;
  double final_train_loss = 0;
  ValResult pre_export;  // the trained model's last validation
  ValResult roundtrip;   // the artifact's validation
  int64_t artifact_bytes = 0;
  std::filesystem::path run_dir;
};

// The run folder for `config` (runtime.run_dir / run_id), created.
std::filesystem::path prepare_run_dir(const Config& config);

// Quantized weights -> artifact file with QUANT's compressor ("auto": the
// smallest of zlib/zstd/lzma); returns the file size.
int64_t write_quantized_artifact(const std::filesystem::path& path, const QuantizedModel& model,
                                 const Config& config);

// resume: continue from run_dir/checkpoint.safetensors (same config required).
TrainSummary train(const Config& config, const std::filesystem::path& run_dir, bool resume = false);

// Where a training step's micro-batches come from (the loader, or synthetic
// tokens in benchmarks).
using BatchSource = std::function<TokenBatch()>;

// One optimizer step: `accum` micro-batches of forward + backward(loss/accum),
// then the schedule values, optional clipping and the optimizer step.
// Returns the mean train loss (a device scalar; .item() syncs).
// With an active `group`, gradients are averaged across ranks before
// clipping and the step (data parallel).
torch::Tensor train_step(GPT& model, Optimizers& optimizers, const BatchSource& next_batch,
                         const TrainConfig& config, int64_t accum, torch::Device device,
                         double lr_scale, double muon_momentum, ProcessGroup* group = nullptr);

}  // namespace pgolf
