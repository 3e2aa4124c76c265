#include "eval/ttt.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <numbers>
#include <span>

#include "common/error.h"
#include "common/progress.h"
#include "dist/process_group.h"
#include "eval/sliding.h"
#include "eval/ttt_optimizer.h"
#include "eval/ttt_params.h"
#include "eval/windows.h"

namespace pgolf {
namespace {

using Clock = std::chrono::steady_clock;

// The state of one TTT pass; run() scores and adapts chunk by chunk.
class ScoreFirstTtt {
 public:
  ScoreFirstTtt(GPT& model, const torch::Tensor& stream, const ByteLuts& luts,
                const TttOptions& options)
      : model_(model),
        stream_(stream.to(torch::kCPU, torch::kLong).contiguous()),
        opt_(options),
        cfg_(options.ttt),
        rank_(options.group ? options.group->rank() : 0),
        world_(options.group ? options.group->world_size() : 1),
        targets_(stream_.numel() - 1),
        chunks_(ceil_div(targets_, cfg_.chunk_tokens)),
        scorer_(model, stream_, luts, options.window_len, options.eval_batch_seqs),
        audit_(stream_.numel(), cfg_.chunk_tokens),
        device_(model->parameters().front().device()) {
    const auto windows = options.reference_tail
                             ? reference_windows(targets_, options.window_len, options.stride)
                             : exact_windows(targets_, options.window_len, options.stride);
    result_.windows = static_cast<int64_t>(windows.size());
    by_chunk_ = windows_by_chunk(windows, cfg_.chunk_tokens, chunks_);
    result_.chunks = chunks_;
    for (int64_t c = 0; c + 1 < chunks_; ++c) total_steps_ += cfg_.epochs * steps_per_epoch(c);
  }

  TttResult run() {
    const auto start = Clock::now();
    start_ = start;
    ParamSelection selection;
    selection.freeze_blocks = cfg_.freeze_blocks;
    selection.block_lr_min = cfg_.block_lr_min;
    selection.proj_mult = cfg_.proj_lr_mult;
    selection.fc_mult = cfg_.fc_lr_mult;
    TrainableSet trainable = select_trainable(model_, selection);
    result_.trainable = trainable.trainable_count;
    result_.frozen = trainable.frozen_count;
    FreezeGuard freeze(trainable);
    TttUpdateOptions update;
    update.rule = cfg_.mode;
    update.momentum = cfg_.momentum;
    update.ns_steps = cfg_.ns_steps;
    update.ns_dtype = opt_.ns_dtype;
    TttOptimizer optimizer(trainable.params, update);

    print(fmt::format(
        "ttt_sliding:start chunks={} chunk_tokens={} total_windows={} stride={} mode={} lr={} "
        "epochs={}{}",
        chunks_, cfg_.chunk_tokens, result_.windows, opt_.stride, name_of(cfg_.mode), cfg_.lr,
        cfg_.epochs, cfg_.entropy_adapt ? " entropy_adapt=1" : ""));
    print(
        fmt::format("ttt_sliding:params unfrozen={} frozen={}", result_.trainable, result_.frozen));
    for (int64_t c = 0; c < chunks_; ++c) {
      if (opt_.deliberately_train_first) {
        adapt(c, optimizer, /*entropy=*/0);
        score(c);
      } else {
        const double entropy = score(c);
        adapt(c, optimizer, entropy);
      }
      ValResult running = result_.result;
      finish(running);
      if (opt_.on_chunk) opt_.on_chunk(c + 1, chunks_, running.val_bpb);
      if ((c + 1) % 10 == 0 || c + 1 == chunks_) {
        print(fmt::format("  ttt_chunk [{}/{}] bpb={:.6f} time={:.1f}s", c + 1, chunks_,
                          running.val_bpb, seconds_since(start)));
      }
    }
    all_reduce_sums(result_.result, opt_.group);
    finish(result_.result);
    result_.result.seconds = seconds_since(start);
    result_.legality = audit_.report();
    print(fmt::format("ttt_sliding:done val_loss={:.6f} val_bpb={:.6f} elapsed={:.1f}s",
                      result_.result.val_loss, result_.result.val_bpb, result_.result.seconds));
    return result_;
  }

 private:
  void print(const std::string& line) const {
    if (opt_.print && rank_ == 0) opt_.print(line);
  }

  int64_t sequences_in(int64_t c) const {
    const int64_t begin = c * cfg_.chunk_tokens;
    const int64_t end = std::min((c + 1) * cfg_.chunk_tokens, targets_);
    return (end - begin) / opt_.train_seq_len;
  }

  // Every rank runs the same number of steps (collectives must match): the
  // largest share's batches.
  int64_t steps_per_epoch(int64_t c) const {
    return ceil_div(ceil_div(sequences_in(c), world_), cfg_.batch_seqs);
  }

  // Scores chunk c's windows (this rank's share); returns the chunk's mean
  // NLL over all ranks when entropy adaptation needs it.
  double score(int64_t c) {
    const auto& windows = by_chunk_[static_cast<size_t>(c)];
    if (windows.empty()) return 0;
    const Range mine = rank_share(static_cast<int64_t>(windows.size()), rank_, world_);
    ValResult chunk;
    scorer_.score(std::span(windows).subspan(mine.begin, mine.size()), chunk);
    result_.result.loss_sum += chunk.loss_sum;
    result_.result.token_count += chunk.token_count;
    result_.result.byte_count += chunk.byte_count;
    // The chunk's windows are scored on every rank before any rank's next
    // update: that update's gradient all-reduce needs every rank to get there.
    for (const Window& w : windows) audit_.scored(w.first_target(), w.last_target());
    if (!cfg_.entropy_adapt) return 0;
    all_reduce_sums(chunk, opt_.group);
    return chunk.token_count > 0 ? chunk.loss_sum / static_cast<double>(chunk.token_count) : 0;
  }

  void adapt(int64_t c, TttOptimizer& optimizer, double entropy) {
    if (c + 1 >= chunks_ || cfg_.epochs == 0 || result_.capped) return;
    const int64_t n_seq = sequences_in(c);
    if (n_seq == 0) return;
    if (cfg_.max_seconds > 0) {
      double elapsed = seconds_since(start_);
      if (opt_.group) elapsed = opt_.group->all_reduce_max(elapsed);
      if (elapsed > cfg_.max_seconds) {
        result_.capped = true;
        print(
            fmt::format("  ttt_chunk: time cap {:.0f}s reached at chunk {}/{}; scoring goes on "
                        "without adapting",
                        cfg_.max_seconds, c + 1, chunks_));
        return;
      }
    }
    const auto t0 = Clock::now();
    const int64_t epochs =
        cfg_.entropy_adapt ? entropy_adapted_epochs(entropy, cfg_.epochs) : cfg_.epochs;
    const int64_t L = opt_.train_seq_len;
    const int64_t base = c * cfg_.chunk_tokens;
    const Range mine = rank_share(n_seq, rank_, world_);
    const int64_t per_epoch = steps_per_epoch(c);
    model_->train();
    for (int64_t e = 0; e < epochs; ++e) {
      for (int64_t k = 0; k < per_epoch; ++k) {
        const int64_t k0 = std::min(mine.begin + k * cfg_.batch_seqs, mine.end);
        const int64_t k1 = std::min(k0 + cfg_.batch_seqs, mine.end);
        optimizer.zero_grad();
        if (k1 > k0) {
          const int64_t first = base + k0 * L, last = base + k1 * L;
          PGOLF_CHECK(audit_.used_for_update(first, last),
                      "legality: TTT was about to train on tokens that have not been scored "
                      "(chunk {}): {}",
                      c, audit_.report().first_violation);
          auto tokens = stream_.slice(0, first, last + 1).to(device_);
          auto x = tokens.slice(0, 0, -1).view({-1, L});
          auto y = tokens.slice(0, 1).view({-1, L});
          model_->loss(x, y).backward();
        }
        step(optimizer, c);
      }
    }
    model_->eval();
    ++result_.trained_chunks;
    result_.train_seconds += seconds_since(t0);
  }

  void step(TttOptimizer& optimizer, int64_t c) {
    optimizer.averaged_step(ttt_learning_rate(cfg_, c, chunks_, result_.steps, total_steps_),
                            opt_.group, cfg_.grad_clip);
    ++result_.steps;
  }

  GPT& model_;
  torch::Tensor stream_;
  const TttOptions& opt_;
  const TttConfig& cfg_;
  int64_t rank_, world_;
  int64_t targets_, chunks_;
  int64_t total_steps_ = 0;
  WindowScorer scorer_;
  LegalityAudit audit_;
  torch::Device device_;
  std::vector<std::vector<Window>> by_chunk_;
  Clock::time_point start_;
  TttResult result_;
};

}  // namespace

std::vector<std::vector<Window>> windows_by_chunk(const std::vector<Window>& windows,
                                                  int64_t chunk_tokens, int64_t chunks) {
  std::vector<std::vector<Window>> out(static_cast<size_t>(chunks));
  for (const Window& w : windows) {
    const int64_t c = std::min((w.start + w.score_from) / chunk_tokens, chunks - 1);
    out[static_cast<size_t>(c)].push_back(w);
  }
  return out;
}

nlohmann::json TttResult::to_json() const {
  return {{"val_loss", result.val_loss},
          {"val_bpb", result.val_bpb},
          {"token_count", result.token_count},
          {"byte_count", result.byte_count},
          {"eval_seconds", result.seconds},
          {"train_seconds", train_seconds},
          {"chunks", chunks},
          {"trained_chunks", trained_chunks},
          {"steps", steps},
          {"windows", windows},
          {"trainable_params", trainable},
          {"frozen_params", frozen},
          {"time_capped", capped},
          {"legality", legality.to_json()}};
}

int64_t entropy_adapted_epochs(double entropy, int64_t base) {
  if (entropy > 2.1) return base + 1;
  if (entropy < 1.75) return std::max<int64_t>(base - 1, 1);
  return base;
}

double ttt_learning_rate(const TttConfig& ttt, int64_t c, int64_t chunks, int64_t step,
                         int64_t steps) {
  const double pi = std::numbers::pi;
  if (ttt.schedule == TttSchedule::kChunk) {
    return ttt.lr * 0.5 * (1 + std::cos(pi * c / std::max<int64_t>(chunks - 1, 1)));
  }
  if (ttt.schedule == TttSchedule::kStep) {
    return ttt.lr * 0.5 * (1 + std::cos(pi * step / std::max<int64_t>(steps, 1)));
  }
  return ttt.lr;
}

TttResult score_first_ttt(GPT& model, const torch::Tensor& stream, const ByteLuts& luts,
                          const TttOptions& options) {
  PGOLF_CHECK(options.ttt.enabled() && options.ttt.mode != TttMode::kPhased,
              "score_first_ttt runs TTT_MODE sgd, adamw or muon (phased: eval/phased_ttt.h)");
  PGOLF_CHECK(stream.numel() > options.train_seq_len,
              "the validation stream ({} tokens) is shorter than one training sequence ({})",
              stream.numel(), options.train_seq_len);
  ScoreFirstTtt run(model, stream, luts, options);
  return run.run();
}

}  // namespace pgolf
