#include "perf/eval_bench.h"

#include <chrono>

#include "common/device.h"
#include "common/error.h"
#include "eval/sliding.h"
#include "model/flops.h"
#include "pipeline/run_context.h"

namespace pgolf {
namespace {

// Every piece one byte, no boundaries: the byte count costs what it costs on
// real data, and no tokenizer is needed.
ByteLuts uniform_luts(int64_t vocab_size) {
  return ByteLuts{torch::ones({vocab_size}, torch::kShort),
                  torch::zeros({vocab_size}, torch::kBool),
                  torch::zeros({vocab_size}, torch::kBool)};
}

}  // namespace

EvalBench::EvalBench(const Config& config, int64_t batch_seqs, int64_t stride, torch::Device device)
    : config_(config), stride_(stride), device_(device) {
  const int64_t L = config.train.train_seq_len;
  PGOLF_CHECK(batch_seqs > 0 && stride > 0 && stride <= L,
              "--eval-batch-seqs must be positive and 0 < --eval-stride <= TRAIN_SEQ_LEN ({})", L);
  model_ = init_model(config, device);
  stream_ = torch::randint(config.model.vocab_size, {batch_seqs * stride + L + 1},
                           torch::TensorOptions().dtype(torch::kLong));
  for (int64_t i = 0; i < batch_seqs; ++i) {
    windows_.push_back(Window{.start = i * stride, .len = L, .score_from = L - stride});
  }
  scorer_ = std::make_unique<WindowScorer>(model_, stream_, uniform_luts(config.model.vocab_size),
                                           L, batch_seqs);
}

EvalBench::~EvalBench() = default;

double EvalBench::run(int64_t batches) {
  const auto t0 = std::chrono::steady_clock::now();
  ValResult total;
  for (int64_t i = 0; i < batches; ++i) scorer_->score(windows_, total);
  synchronize(device_);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

torch::Tensor EvalBench::inputs() const {
  std::vector<torch::Tensor> rows;
  for (const Window& w : windows_) rows.push_back(stream_.slice(0, w.start, w.start + w.len));
  return torch::stack(rows);
}

torch::Tensor EvalBench::targets() const {
  std::vector<torch::Tensor> rows;
  for (const Window& w : windows_) {
    rows.push_back(stream_.slice(0, w.start + 1, w.start + w.len + 1));
  }
  return torch::stack(rows);
}

int64_t EvalBench::scored_tokens_per_batch() const {
  return static_cast<int64_t>(windows_.size()) * stride_;
}

double EvalBench::flops_per_scored_token() const {
  // The work scoring needs: the whole window's forward, but the last layer's
  // queries, MLP and the head only on the scored positions.
  return scoring_window_flops(config_.model, config_.train.train_seq_len, stride_) /
         static_cast<double>(stride_);
}

}  // namespace pgolf
