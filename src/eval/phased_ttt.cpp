#include "eval/phased_ttt.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/optim/adamw.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numbers>
#include <optional>

#include "common/error.h"
#include "common/progress.h"
#include "dist/process_group.h"
#include "eval/ttt_optimizer.h"
#include "eval/ttt_params.h"
#include "eval/windows.h"
#include "model/documents.h"

namespace pgolf {
namespace {

using Clock = std::chrono::steady_clock;

// Restores the model's training mode, document attention and every
// parameter's requires_grad when the evaluation ends, however it ends.
class ModelStateGuard {
 public:
  explicit ModelStateGuard(GPT& model)
      : model_(model),
        training_(model->is_training()),
        documents_(model->document_attention()),
        params_(model->parameters()) {
    for (const auto& p : params_) requires_grad_.push_back(p.requires_grad());
  }
  ~ModelStateGuard() {
    model_->set_adapters(nullptr);
    model_->train(training_);
    model_->set_document_attention(documents_);
    for (size_t i = 0; i < params_.size(); ++i) params_[i].requires_grad_(requires_grad_[i]);
  }
  void set_requires_grad(bool on) {
    for (auto& p : params_) p.requires_grad_(on);
  }
  ModelStateGuard(const ModelStateGuard&) = delete;
  ModelStateGuard& operator=(const ModelStateGuard&) = delete;

 private:
  GPT& model_;
  bool training_, documents_;
  std::vector<torch::Tensor> params_;
  std::vector<bool> requires_grad_;
};

// One chunk's rows: inputs and targets (B, C) on the device, and per row the
// window and the scored targets, in stream positions.
struct ChunkRows {
  torch::Tensor x, y;
  std::vector<ChunkWindow> windows;  // per document; length 0: no chunk left
  int64_t context = 0;               // C
  int64_t train_from = 0;            // where a trained chunk's targets start in every row
};

class PhasedTtt {
 public:
  PhasedTtt(GPT& model, const torch::Tensor& stream, const ByteLuts& luts,
            const PhasedTttOptions& options)
      : model_(model),
        stream_(stream.to(torch::kCPU, torch::kLong).contiguous()),
        opt_(options),
        cfg_(options.ttt),
        rank_(options.group ? options.group->rank() : 0),
        world_(options.group ? options.group->world_size() : 1),
        device_(model->parameters().front().device()),
        luts_(luts.to(device_)),
        docs_(find_documents(stream_)),
        queue_(phased_batch_queue(docs_, cfg_.batch_docs)),
        boundaries_(phase_boundaries(static_cast<int64_t>(docs_.size()), cfg_.prefix_docs,
                                     cfg_.num_phases)),
        audit_(stream_.numel(), cfg_.global_chunk_tokens),
        scored_here_(docs_.size(), false),
        place_(docs_.size()) {
    if (luts.sidecar.defined()) {
      check_sidecar_fits(luts, stream_);
      // Prefix sums: a chunk's bytes are one subtraction.
      const auto sums = luts.sidecar.to(torch::kCPU, torch::kLong).cumsum(0).contiguous();
      sidecar_sums_.assign(1, 0);
      sidecar_sums_.insert(sidecar_sums_.end(), sums.data_ptr<int64_t>(),
                           sums.data_ptr<int64_t>() + sums.numel());
    }
    for (const auto& batch : queue_) {
      for (size_t pos = 0; pos < batch.docs.size(); ++pos) {
        place_[static_cast<size_t>(batch.docs[pos].index)] = {batch.order,
                                                              static_cast<int64_t>(pos)};
      }
    }
    if (opt_.document_scores) opt_.document_scores->assign(docs_.size(), DocumentScore{});
  }

  PhasedTttResult run() {
    start_ = Clock::now();
    ModelStateGuard state(model_);
    state.set_requires_grad(false);
    model_->eval();
    // Each row is one document's window: dense causal attention, as the record's forward_ttt.
    model_->set_document_attention(false);
    for (const Document& d : docs_) audit_.given(d.start);

    const int64_t Q = static_cast<int64_t>(queue_.size());
    result_.documents = static_cast<int64_t>(docs_.size());
    result_.batches = Q;
    auto adapters = make_adapters(cfg_.batch_docs);
    result_.lora_params_per_document = adapters->parameters_per_document();
    print(fmt::format(
        "ttt_phased: total_docs:{} prefix_docs:{} suffix_docs:{} num_phases:{} boundaries:[{}] "
        "batches:{} lora_rank:{} lora_params/doc:{} chunk:{} max_context:{}",
        docs_.size(), prefix(), static_cast<int64_t>(docs_.size()) - prefix(), cfg_.num_phases,
        fmt::join(boundaries_, ", "), Q, cfg_.lora_rank, result_.lora_params_per_document,
        cfg_.chunk_size, cfg_.eval_seq_len));

    size_t phase = 0;
    bool global_done = prefix() == 0;
    for (int64_t round = 0; round * world_ < Q; ++round) {
      check_time_cap(round * world_);
      const int64_t q = round * world_ + rank_;
      if (q < Q) run_batch(queue_[static_cast<size_t>(q)], *adapters);
      const int64_t done = std::min((round + 1) * world_, Q);
      if (opt_.on_batch) {
        ValResult running = result_.result;
        finish(running);
        opt_.on_batch(done, Q, running.val_bpb);
      }
      if (global_done || scored_count(done) < boundaries_[phase]) continue;
      // A phase after the last batch could change no score (the record runs it).
      if (done == Q) break;
      check_time_cap(done);
      if (!result_.capped) {
        run_phase(phase, state);
        adapters = make_adapters(cfg_.batch_docs);
      }
      global_done = ++phase >= boundaries_.size() || result_.capped;
    }
    all_reduce_sums(result_.result, opt_.group);
    finish(result_.result);
    result_.result.seconds = seconds_since(start_);
    result_.legality = audit_.report();
    return result_;
  }

 private:
  void print(const std::string& line) const {
    if (opt_.print && rank_ == 0) opt_.print(line);
  }

  int64_t prefix() const {
    return std::min(static_cast<int64_t>(docs_.size()), std::max<int64_t>(cfg_.prefix_docs, 0));
  }

  // Documents in the first `batches` batches of the queue.
  int64_t scored_count(int64_t batches) const {
    int64_t n = 0;
    for (int64_t q = 0; q < batches; ++q) {
      n += static_cast<int64_t>(queue_[static_cast<size_t>(q)].docs.size());
    }
    return n;
  }

  std::unique_ptr<LoraAdapters> make_adapters(int64_t batch) const {
    LoraShape shape;
    shape.batch = batch;
    shape.rank = cfg_.lora_rank;
    shape.alpha = cfg_.lora_alpha;
    shape.k = cfg_.k_lora;
    shape.mlp = cfg_.mlp_lora;
    shape.o = cfg_.o_lora;
    return std::make_unique<LoraAdapters>(model_->config(), model_->looping(), shape, device_);
  }

  // Forward tokens of queue batch q: each chunk runs its documents that have it.
  int64_t forward_tokens(const DocumentBatch& batch) const {
    int64_t tokens = 0;
    for (const Document& d : batch.docs) {
      for (int64_t c = 0, n = ceil_div(d.targets(), cfg_.chunk_size); c < n; ++c) {
        tokens += std::min((c + 1) * cfg_.chunk_size, cfg_.eval_seq_len);
      }
    }
    return tokens;
  }

  // TTT_MAX_SECONDS bounds the whole evaluation: adapting (and any phase
  // left) stops once the time spent plus the time to score this rank's
  // remaining batches, at the forward speed measured so far, would pass it.
  void check_time_cap(int64_t next) {
    if (opt_.max_seconds <= 0 || result_.capped) return;
    int64_t remaining = 0;
    for (int64_t q = next + rank_; q < static_cast<int64_t>(queue_.size()); q += world_) {
      remaining += forward_tokens(queue_[static_cast<size_t>(q)]);
    }
    const double elapsed = seconds_since(start_);
    const double to_score =
        forwarded_ > 0 ? static_cast<double>(remaining) * forward_seconds_ / forwarded_ : 0.0;
    double total = elapsed + to_score;
    if (opt_.group) total = opt_.group->all_reduce_max(total);
    if (total <= opt_.max_seconds) return;
    result_.capped = true;
    print(fmt::format(
        "ttt_phased: time cap {:.0f}s: {:.1f}s spent + {:.1f}s to score the remaining batches; "
        "the rest is scored without adapting",
        opt_.max_seconds, elapsed, to_score));
  }

  // ---- per-document LoRA ------------------------------------------------

  ChunkRows gather(const std::vector<Document>& docs, int64_t chunk) const {
    const int64_t B = static_cast<int64_t>(docs.size());
    const int64_t cs = cfg_.chunk_size, W = cfg_.eval_seq_len;
    ChunkRows rows;
    rows.context = std::min((chunk + 1) * cs, W);
    rows.train_from = chunk * cs - std::max<int64_t>(0, (chunk + 1) * cs - W);
    const int64_t C = rows.context;
    auto x = torch::zeros({B, C}, torch::kLong);
    auto y = torch::zeros({B, C}, torch::kLong);
    for (int64_t b = 0; b < B; ++b) {
      const Document& d = docs[static_cast<size_t>(b)];
      const int64_t chunks = ceil_div(d.targets(), cs);
      ChunkWindow w;
      if (chunk < chunks) w = phased_chunk_window(chunk, d.targets(), cs, W);
      rows.windows.push_back(w);
      if (w.length == 0) continue;
      const auto tokens = stream_.slice(0, d.start + w.start, d.start + w.start + w.length + 1);
      x[b].slice(0, 0, w.length).copy_(tokens.slice(0, 0, w.length));
      y[b].slice(0, 0, w.length).copy_(tokens.slice(0, 1));
    }
    rows.x = x.to(device_);
    rows.y = y.to(device_);
    return rows;
  }

  void run_batch(const DocumentBatch& batch, LoraAdapters& reusable) {
    const auto& docs = batch.docs;
    const int64_t B = static_cast<int64_t>(docs.size());
    std::unique_ptr<LoraAdapters> fresh;
    LoraAdapters* adapters = &reusable;
    if (B == reusable.batch()) {
      reusable.reset(cfg_.warm_start_a);
    } else {
      fresh = make_adapters(B);
      adapters = fresh.get();
    }
    torch::optim::AdamW adamw(adapters->parameters(), torch::optim::AdamWOptions(cfg_.lora_lr)
                                                          .betas({cfg_.beta1, cfg_.beta2})
                                                          .eps(1e-10)
                                                          .weight_decay(cfg_.weight_decay));
    model_->set_adapters(adapters);
    const ValResult before = result_.result;
    int64_t chunks = 0;
    for (const Document& d : docs)
      chunks = std::max(chunks, ceil_div(d.targets(), cfg_.chunk_size));
    size_t first = 0;
    for (int64_t c = 0; c < chunks; ++c) {
      // Only the documents with chunk c run: the batch is sorted by length,
      // so they are its last rows (the record computes the finished ones'
      // padding rows too; rows are independent, so the scores are the same).
      while (ceil_div(docs[first].targets(), cfg_.chunk_size) <= c) ++first;
      const std::vector<Document> active(docs.begin() + static_cast<std::ptrdiff_t>(first),
                                         docs.end());
      adapters->set_first_row(static_cast<int64_t>(first));
      const ChunkRows rows = gather(active, c);
      // Documents with a later chunk train on this one (never on their last).
      std::vector<float> trains(active.size(), 0.0f);
      bool train = false;
      for (size_t b = 0; b < active.size(); ++b) {
        if (c + 1 < ceil_div(active[b].targets(), cfg_.chunk_size)) {
          trains[b] = 1.0f;
          train = true;
        }
      }
      train = train && !result_.capped;
      const bool planted =
          train && opt_.plant == PlantedViolation::kTrainBeforeScoring && !planted_;
      if (planted) {
        planted_ = true;
        adapt(active, rows, trains, forward(rows, true), adamw);
      }
      const auto t0 = Clock::now();
      auto losses = forward(rows, train && !planted);
      score(active, rows, c, losses);
      forward_seconds_ += seconds_since(t0);  // score() waited for the losses
      forwarded_ += rows.x.numel();
      if (train && !planted) adapt(active, rows, trains, losses, adamw);
    }
    adapters->set_first_row(0);
    model_->set_adapters(nullptr);
    for (const Document& d : docs) scored_here_[static_cast<size_t>(d.index)] = true;
    report_batch(batch, before);
  }

  torch::Tensor forward(const ChunkRows& rows, bool with_grad) {
    std::optional<torch::NoGradGuard> no_grad;
    if (!with_grad) no_grad.emplace();
    return model_->token_losses(rows.x, rows.y);
  }

  // Adds each document's scored targets to the sums; the audit records them.
  void score(const std::vector<Document>& docs, const ChunkRows& rows, int64_t chunk,
             const torch::Tensor& losses) {
    const auto loss = losses.detach().to(torch::kCPU, torch::kDouble).contiguous();
    torch::Tensor lut_bytes;
    if (sidecar_sums_.empty()) {
      lut_bytes = target_bytes(luts_, rows.x, rows.y).to(torch::kCPU, torch::kLong).contiguous();
    }
    const auto* l = loss.data_ptr<double>();
    for (size_t b = 0; b < docs.size(); ++b) {
      const ChunkWindow& w = rows.windows[b];
      if (w.scored == 0) continue;
      const Document& d = docs[b];
      double loss_sum = 0, bytes = 0;
      const int64_t row = static_cast<int64_t>(b) * rows.context;
      for (int64_t j = w.scored_from; j < w.scored_from + w.scored; ++j) loss_sum += l[row + j];
      // Targets at stream positions first..last.
      const int64_t first = d.start + chunk * cfg_.chunk_size + 1;
      const int64_t last = first + w.scored - 1;
      if (!sidecar_sums_.empty()) {
        bytes = static_cast<double>(sidecar_sums_[static_cast<size_t>(last + 1)] -
                                    sidecar_sums_[static_cast<size_t>(first)]);
      } else {
        const int64_t* t = lut_bytes.data_ptr<int64_t>() + row;
        for (int64_t j = w.scored_from; j < w.scored_from + w.scored; ++j) bytes += t[j];
      }
      result_.result.loss_sum += loss_sum;
      result_.result.byte_count += bytes;
      result_.result.token_count += w.scored;
      if (opt_.document_scores) {
        auto& s = (*opt_.document_scores)[static_cast<size_t>(d.index)];
        s.loss_sum += loss_sum;
        s.byte_count += bytes;
        s.tokens += w.scored;
      }
      audit_.scored(first, last);
    }
  }

  // TTT_GRAD_STEPS AdamW steps on the mean loss of each training document's
  // chunk targets (the first step reuses the scoring forward).
  void adapt(const std::vector<Document>& docs, const ChunkRows& rows,
             const std::vector<float>& trains, torch::Tensor losses, torch::optim::AdamW& adamw) {
    for (size_t b = 0; b < docs.size(); ++b) {
      if (trains[b] == 0) continue;
      const Document& d = docs[b];
      const ChunkWindow& w = rows.windows[b];
      // Inputs from the window's start, targets to the chunk's last.
      const int64_t first = d.start + w.start, last = d.start + w.start + w.length;
      PGOLF_CHECK(audit_.used_for_update(first, last),
                  "legality: phased TTT was about to train document {} on tokens that have not "
                  "been scored: {}",
                  d.index, audit_.report().first_violation);
    }
    const auto weights = torch::tensor(trains).to(device_);
    const int64_t from = rows.train_from, to = rows.train_from + cfg_.chunk_size;
    for (int64_t step = 0; step < cfg_.grad_steps; ++step) {
      if (step > 0) losses = forward(rows, true);
      const auto loss = (losses.slice(1, from, to).mean(-1) * weights).sum();
      adamw.zero_grad();
      loss.backward();
      adamw.step();
      ++result_.lora_steps;
    }
  }

  void report_batch(const DocumentBatch& batch, const ValResult& before) {
    const ValResult& now = result_.result;
    const double dt = static_cast<double>(now.token_count - before.token_count);
    const double db = now.byte_count - before.byte_count;
    const double dl = now.loss_sum - before.loss_sum;
    const double b_loss = dt > 0 ? dl / dt : 0;
    const double b_bpb = dt > 0 && db > 0 ? b_loss / std::numbers::ln2 * dt / db : 0;
    ValResult running = now;
    finish(running);
    int64_t shortest = batch.docs.front().length, longest = shortest;
    for (const auto& d : batch.docs) {
      shortest = std::min(shortest, d.length);
      longest = std::max(longest, d.length);
    }
    print(fmt::format("ttp: b{}/{} bl:{:.4f} bb:{:.4f} rl:{:.4f} rb:{:.4f} dl:{}-{} t:{:.1f}s",
                      batch.order + 1, queue_.size(), b_loss, b_bpb, running.val_loss,
                      running.val_bpb, shortest, longest, seconds_since(start_)));
  }

  // ---- global SGD phases -------------------------------------------------

  struct Span {
    int64_t offset, start, length;  // in the phase's stream, in the validation stream
  };

  void run_phase(size_t phase, ModelStateGuard& state) {
    const auto t0 = Clock::now();
    const int64_t boundary = boundaries_[phase];
    // Which documents every rank has scored (the record all-gathers its lists).
    std::vector<float> mine(docs_.size());
    for (size_t i = 0; i < docs_.size(); ++i) mine[i] = scored_here_[i] ? 1.0f : 0.0f;
    auto reduced = torch::tensor(mine);
    if (opt_.group) opt_.group->all_reduce_sum(reduced);
    const auto scored = reduced.accessor<float, 1>();
    std::vector<int64_t> chosen;
    for (size_t i = 0; i < docs_.size(); ++i) {
      if (scored[static_cast<int64_t>(i)] == 0) continue;
      chosen.push_back(static_cast<int64_t>(i));
      // Scored on another rank: its targets count as scored here too.
      if (!scored_here_[i]) audit_.scored(docs_[i].start + 1, docs_[i].start + docs_[i].targets());
    }
    const int64_t scored_docs = static_cast<int64_t>(chosen.size());
    std::stable_sort(chosen.begin(), chosen.end(),
                     [&](int64_t a, int64_t b) { return place_[a] < place_[b]; });
    if (static_cast<int64_t>(chosen.size()) > boundary) chosen.resize(boundary);
    if (opt_.plant == PlantedViolation::kPhaseOnUnscoredDocument && phase == 0) {
      for (size_t i = 0; i < docs_.size(); ++i) {
        if (scored[static_cast<int64_t>(i)] == 0) {
          chosen.push_back(static_cast<int64_t>(i));
          break;
        }
      }
    }
    std::vector<Span> spans;
    std::vector<torch::Tensor> pieces;
    int64_t offset = 0;
    for (const int64_t i : chosen) {
      const Document& d = docs_[static_cast<size_t>(i)];
      spans.push_back({offset, d.start, d.length});
      pieces.push_back(stream_.slice(0, d.start, d.start + d.length));
      offset += d.length;
    }
    PhaseReport report;
    report.documents = static_cast<int64_t>(chosen.size());
    report.scored = scored_docs;
    report.stream_tokens = offset;
    print(fmt::format("ttpp: phase:{}/{} pd:{} gd:{} tokens:{} t:{:.1f}s", phase + 1,
                      boundaries_.size(), scored_docs, chosen.size(), offset,
                      seconds_since(start_)));
    if (offset > 1) {
      train_global(torch::cat(pieces), spans, state, report);
    }
    report.seconds = seconds_since(t0);
    print(fmt::format("ttpr: phase:{}/{} chunks:{} steps:{} {:.1f}s t:{:.1f}s", phase + 1,
                      boundaries_.size(), report.chunks, report.steps, report.seconds,
                      seconds_since(start_)));
    result_.phases.push_back(report);
  }

  // Positions [first, last] of the phase's stream, audited as the validation
  // stream positions they came from.
  void audit_global(const std::vector<Span>& spans, int64_t first, int64_t last) {
    for (const Span& s : spans) {
      const int64_t lo = std::max(first, s.offset), hi = std::min(last, s.offset + s.length - 1);
      if (lo > hi) continue;
      PGOLF_CHECK(audit_.used_for_update(s.start + lo - s.offset, s.start + hi - s.offset),
                  "legality: a global TTT phase was about to train on tokens that have not "
                  "been scored: {}",
                  audit_.report().first_violation);
    }
  }

  void train_global(const torch::Tensor& tokens, const std::vector<Span>& spans,
                    ModelStateGuard& state, PhaseReport& report) {
    const int64_t L = opt_.global_seq_len, C = cfg_.global_chunk_tokens;
    const int64_t T = tokens.numel() - 1;
    const int64_t chunks = ceil_div(T, C);
    state.set_requires_grad(true);
    model_->set_document_attention(true);  // the record's cu_seqlens: documents stay apart
    model_->train();
    TrainableSet all = select_trainable(model_, ParamSelection{});
    TttUpdateOptions update;
    update.rule = TttMode::kSgd;
    update.momentum = cfg_.global_momentum;
    TttOptimizer sgd(all.params, update);
    report.chunks = chunks;
    for (int64_t c = 0; c + 1 < chunks && cfg_.global_epochs > 0; ++c) {
      const int64_t begin = c * C, end = std::min((c + 1) * C, T);
      const int64_t seqs = (end - begin) / L;
      if (seqs <= 0) continue;
      const double lr = cfg_.global_lr * 0.5 *
                        (1 + std::cos(std::numbers::pi * static_cast<double>(c) /
                                      static_cast<double>(std::max<int64_t>(chunks - 1, 1))));
      const Range mine = rank_share(seqs, rank_, world_);
      // Every rank runs the same number of steps (the all-reduce must match).
      const int64_t steps = ceil_div(ceil_div(seqs, world_), cfg_.global_batch_seqs);
      for (int64_t e = 0; e < cfg_.global_epochs; ++e) {
        for (int64_t k = 0; k < steps; ++k) {
          const int64_t k0 = std::min(mine.begin + k * cfg_.global_batch_seqs, mine.end);
          const int64_t k1 = std::min(k0 + cfg_.global_batch_seqs, mine.end);
          sgd.zero_grad();
          if (k1 > k0) {
            const int64_t first = begin + k0 * L, last = begin + k1 * L;
            audit_global(spans, first, last);
            const auto row = tokens.slice(0, first, last + 1).to(device_);
            model_->loss(row.slice(0, 0, -1).unsqueeze(0), row.slice(0, 1).unsqueeze(0)).backward();
          }
          sgd.averaged_step(lr, opt_.group, cfg_.global_grad_clip);
          ++report.steps;
        }
      }
    }
    model_->eval();
    model_->set_document_attention(false);
    state.set_requires_grad(false);
  }

  GPT& model_;
  torch::Tensor stream_;
  const PhasedTttOptions& opt_;
  const PhasedTttConfig& cfg_;
  int64_t rank_, world_;
  torch::Device device_;
  ByteLuts luts_;
  std::vector<int64_t> sidecar_sums_;  // prefix sums of the sidecar (N + 1), or empty
  std::vector<Document> docs_;
  std::vector<DocumentBatch> queue_;
  std::vector<int64_t> boundaries_;
  LegalityAudit audit_;
  std::vector<bool> scored_here_;
  std::vector<std::pair<int64_t, int64_t>> place_;  // per document: (batch order, position)
  bool planted_ = false;
  double forward_seconds_ = 0;  // scoring forwards so far, and their tokens
  double forwarded_ = 0;
  Clock::time_point start_;
  PhasedTttResult result_;
};

}  // namespace

std::vector<Document> find_documents(const torch::Tensor& stream) {
  const auto s = stream.to(torch::kCPU, torch::kLong).contiguous();
  const int64_t n = s.numel();
  const auto* t = s.data_ptr<int64_t>();
  PGOLF_CHECK(n >= 2 && t[0] == kBosId,
              "phased TTT: the validation stream must begin with a document (BOS id {}), it "
              "begins with {}",
              kBosId, n > 0 ? t[0] : -1);
  std::vector<int64_t> bos;
  for (int64_t i = 0; i < n; ++i) {
    if (t[i] == kBosId) bos.push_back(i);
  }
  std::vector<Document> docs;
  for (size_t k = 0; k < bos.size(); ++k) {
    const int64_t start = bos[k];
    const int64_t end = k + 1 < bos.size() ? bos[k + 1] + 1 : n;
    // A BOS that ends the stream is the previous document's last target and
    // starts nothing (the record's _find_docs fails an assert there).
    if (end - start < 2) break;
    docs.push_back({static_cast<int64_t>(k), start, end - start});
  }
  return docs;
}

std::vector<DocumentBatch> phased_batch_queue(const std::vector<Document>& docs,
                                              int64_t batch_docs) {
  PGOLF_CHECK(batch_docs > 0, "phased TTT: batches of {} documents", batch_docs);
  auto sorted = docs;
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const Document& a, const Document& b) { return a.length < b.length; });
  std::vector<DocumentBatch> batches;
  for (size_t i = 0; i < sorted.size(); i += static_cast<size_t>(batch_docs)) {
    DocumentBatch batch;
    batch.order = static_cast<int64_t>(batches.size());
    const size_t end = std::min(sorted.size(), i + static_cast<size_t>(batch_docs));
    batch.docs.assign(sorted.begin() + static_cast<std::ptrdiff_t>(i),
                      sorted.begin() + static_cast<std::ptrdiff_t>(end));
    batches.push_back(std::move(batch));
  }
  auto longest = [](const DocumentBatch& b) {
    int64_t m = 0;
    for (const auto& d : b.docs) m = std::max(m, d.length);
    return m;
  };
  std::stable_sort(
      batches.begin(), batches.end(),
      [&](const DocumentBatch& a, const DocumentBatch& b) { return longest(a) > longest(b); });
  return batches;
}

ChunkWindow phased_chunk_window(int64_t chunk, int64_t targets, int64_t chunk_size,
                                int64_t max_len) {
  const int64_t chunks = ceil_div(targets, chunk_size);
  PGOLF_CHECK(chunk >= 0 && chunk < chunks, "phased TTT: chunk {} of a document with {} chunks",
              chunk, chunks);
  const int64_t end = chunk == chunks - 1 ? targets : (chunk + 1) * chunk_size;
  ChunkWindow w;
  w.start = std::max<int64_t>(0, end - max_len);
  w.length = end - w.start;
  w.scored_from = chunk * chunk_size - w.start;
  w.scored = end - chunk * chunk_size;
  return w;
}

std::vector<int64_t> phase_boundaries(int64_t documents, int64_t prefix_docs, int64_t phases) {
  const int64_t prefix = std::min(documents, std::max<int64_t>(prefix_docs, 0));
  std::vector<int64_t> out;
  for (int64_t k = 1; k <= std::max<int64_t>(phases, 1); ++k) out.push_back(prefix * k / phases);
  return out;
}

nlohmann::json PhasedTttResult::to_json() const {
  nlohmann::json phase_list = nlohmann::json::array();
  for (const auto& p : phases) {
    phase_list.push_back({{"documents", p.documents},
                          {"scored_documents", p.scored},
                          {"stream_tokens", p.stream_tokens},
                          {"chunks", p.chunks},
                          {"steps", p.steps},
                          {"seconds", p.seconds}});
  }
  return {{"mode", "phased"},
          {"val_loss", result.val_loss},
          {"val_bpb", result.val_bpb},
          {"token_count", result.token_count},
          {"byte_count", result.byte_count},
          {"eval_seconds", result.seconds},
          {"documents", documents},
          {"batches", batches},
          {"lora_steps", lora_steps},
          {"lora_params_per_document", lora_params_per_document},
          {"phases", phase_list},
          {"time_capped", capped},
          {"legality", legality.to_json()}};
}

PhasedTttResult phased_lora_ttt(GPT& model, const torch::Tensor& stream, const ByteLuts& luts,
                                const PhasedTttOptions& options) {
  options.ttt.validate();
  PhasedTtt run(model, stream, luts, options);
  return run.run();
}

}  // namespace pgolf
