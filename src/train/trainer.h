// The training loop, in the reference's order (train_gpt.py's main loop):
//
//   [warm-up steps, then weights, optimizer state and data restored]
//   loop:  [validate] -> LR multiplier s [-> late QAT on] [-> #1855's loop on] -> one step
//          (A micro-batches forward + backward(loss/A), ranks' gradients
//          averaged, momentum and LRs set, [clip], optimizer step)
//          -> [EMA, SWA] -> log -> wall-clock stop -> [checkpoint]
//
// The model, the process group and the validation come from the caller
// (pipeline/train_run.h composes set-up, this loop, the export and the final
// evaluation); the loop owns the optimizers, the loader, the weight averages,
// the late-QAT switch and the training clock.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/log.h"
#include "common/progress.h"
#include "config/config.h"
#include "data/prefetch_loader.h"
#include "dist/process_group.h"
#include "eval/val_bpb.h"
#include "model/gpt.h"
#include "optim/optimizers.h"
#include "train/averaging.h"
#include "train/clock.h"
#include "train/late_qat.h"

namespace pgolf {

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

// A validation as metrics.jsonl and results.json record it.
nlohmann::json val_record(const ValResult& result);

struct TrainResult {
  int64_t steps = 0;
  double train_time_ms = 0;
  double final_train_loss = 0;
  ValResult last_val;  // the validation after the last step
};

class Trainer {
 public:
  struct Io {
    std::function<ValResult()> validate;  // the model's validation loss, all ranks
    RunLog* log = nullptr;
    MetricsLog* metrics = nullptr;
    std::filesystem::path checkpoint;  // where checkpoints go (and resume reads)
  };
  // `model`: initialised, identical on every rank, on `device`.
  Trainer(const Config& config, GPT model, ProcessGroup& group, torch::Device device, Io io);

  int64_t grad_accum() const { return accum_; }
  void warm_up();     // WARMUP_STEPS steps, then everything restored (the reference's compile)
  void resume();      // continue from the checkpoint, exactly
  TrainResult run();  // steps until ITERATIONS or the wall-clock cap
  void save_checkpoint();

  // After run(): the weights the entry exports into the model ("" if none).
  std::string apply_averaged_weights() { return averages_.apply(); }
  // "encoder:[...] decoder:[...]": the passes the model runs now (#1855's log line).
  std::string pass_schedule() const;
  LateQat& late_qat() { return late_qat_; }
  // The loader's next micro-batch (GPTQ calibration continues the stream).
  TokenBatch next_batch() { return loader_->next_batch(); }

 private:
  std::unique_ptr<PrefetchingTokenLoader> make_loader() const;
  bool is_last_step() const;
  void validate_and_log();
  void log_step(const torch::Tensor& loss, double lr_scale, double momentum, double elapsed_ms);
  double agreed_elapsed_ms(double elapsed_ms);
  void stop_when_out_of_time(double elapsed_ms);
  void maybe_checkpoint();
  void maybe_start_looping(double frac);

  const Config& config_;
  const TrainConfig& tc_;
  GPT model_;
  ProcessGroup& group_;
  torch::Device device_;
  Io io_;
  int64_t accum_;
  Optimizers optimizers_;
  std::unique_ptr<PrefetchingTokenLoader> loader_;
  WeightAverages averages_;
  LateQat late_qat_;
  TrainingClock clock_;
  std::unique_ptr<Progress> progress_;  // created by run()
  int64_t step_ = 0;
  std::optional<int64_t> stop_after_step_;                   // set once the wall clock ran out
  std::optional<ProcessGroup::PendingMax> pending_elapsed_;  // the ranks' clocks, one step behind
  TrainResult result_;
};

}  // namespace pgolf
