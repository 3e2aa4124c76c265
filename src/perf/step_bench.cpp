#include "perf/step_bench.h"

#include <chrono>

#include "common/device.h"
#include "common/error.h"
#include "model/flops.h"
#include "pipeline/run_context.h"
#include "train/trainer.h"

namespace pgolf {

StepBench::StepBench(const Config& config, int64_t batch_tokens, torch::Device device)
    : config_(config), device_(device) {
  const int64_t T = config.train.train_seq_len;
  PGOLF_CHECK(batch_tokens > 0 && batch_tokens % T == 0,
              "--batch-tokens={} must be a positive multiple of the preset's TRAIN_SEQ_LEN={}",
              batch_tokens, T);
  model_ = init_model(config, device);
  optimizers_ = std::make_unique<Optimizers>(model_, config.train);
  tokens_ = torch::randint(config.model.vocab_size, {batch_tokens + 1},
                           torch::TensorOptions().dtype(torch::kLong));
}

double StepBench::run(int64_t steps) {
  const int64_t T = config_.train.train_seq_len;
  // Views of one fixed token block: the batch source costs nothing, so the
  // time is the step's alone.
  // TRAIN_LOADER=documents (#1855) trains on one packed row per micro-batch,
  // attention cut at each BOS and every MAX_DOC_LEN tokens: the same here.
  const int64_t cols = config_.train.train_loader == TrainLoader::kDocuments ? batch_tokens() : T;
  const BatchSource batch = [this, cols] {
    return TokenBatch{tokens_.slice(0, 0, -1).view({-1, cols}),
                      tokens_.slice(0, 1).view({-1, cols})};
  };
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < steps; ++i) {
    last_loss_ = train_step(model_, *optimizers_, batch, config_.train, 1, device_, 1.0,
                            config_.train.muon_momentum);
  }
  synchronize(device_);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double StepBench::flops_per_token() const {
  return training_flops_per_token(config_.model, config_.train.train_seq_len);
}

}  // namespace pgolf
