#include "eval/sliding.h"

#include <algorithm>
#include <chrono>

#include "common/error.h"
#include "common/progress.h"
#include "dist/process_group.h"

namespace pgolf {
namespace {

// Both plans' windows, each once, and which of them each plan counts.
struct UnionPlan {
  std::vector<Window> windows;
  std::vector<int64_t> exact, reference;  // indices into `windows`
};

UnionPlan union_plan(int64_t T, int64_t L, int64_t stride, bool with_reference) {
  UnionPlan plan;
  auto index_of = [&](const Window& w) {
    auto it = std::find(plan.windows.begin(), plan.windows.end(), w);
    if (it != plan.windows.end()) return static_cast<int64_t>(it - plan.windows.begin());
    plan.windows.push_back(w);
    return static_cast<int64_t>(plan.windows.size() - 1);
  };
  const auto exact = exact_windows(T, L, stride);
  for (const auto& w : exact) {
    plan.windows.push_back(w);
    plan.exact.push_back(static_cast<int64_t>(plan.windows.size() - 1));
  }
  if (with_reference) {
    // The plans share every window but the tail ones: look up only near the end.
    for (const auto& w : reference_windows(T, L, stride)) {
      if (w.start + L <= T && w.start % stride == 0 && w.start != 0) {
        plan.reference.push_back(w.start / stride);  // exact's window at this start
      } else {
        plan.reference.push_back(index_of(w));
      }
    }
  }
  return plan;
}

ValResult sum_of(const std::vector<ValResult>& per_window, const std::vector<int64_t>& which) {
  ValResult out;
  for (int64_t i : which) {
    out.loss_sum += per_window[i].loss_sum;
    out.token_count += per_window[i].token_count;
    out.byte_count += per_window[i].byte_count;
  }
  return out;
}

}  // namespace

WindowScorer::WindowScorer(GPT model, torch::Tensor stream, const ByteLuts& luts,
                           int64_t window_len, int64_t batch_seqs)
    : model_(std::move(model)),
      stream_(stream.to(torch::kCPU, torch::kLong).contiguous()),
      window_len_(window_len),
      batch_seqs_(batch_seqs),
      device_(model_->parameters().front().device()) {
  PGOLF_CHECK(window_len > 0 && batch_seqs > 0, "window length and batch must be positive");
  check_sidecar_fits(luts, stream_);
  // The sidecar is gathered per window on the CPU, like the tokens.
  if (luts.sidecar.defined()) sidecar_ = luts.sidecar.to(torch::kCPU).contiguous();
  ByteLuts tables = luts;
  tables.sidecar = torch::Tensor();
  luts_ = tables.to(device_);
}

void WindowScorer::score(std::span<const Window> windows, ValResult& total,
                         std::vector<ValResult>* per_window,
                         const std::function<void(int64_t, int64_t)>& on_batch) {
  const int64_t L = window_len_;
  const int64_t n = static_cast<int64_t>(windows.size());
  const bool was_training = model_->is_training();
  model_->eval();
  torch::InferenceMode inference;
  const auto positions = torch::arange(L, torch::kLong);
  for (int64_t b0 = 0; b0 < n; b0 += batch_seqs_) {
    const int64_t b1 = std::min(b0 + batch_seqs_, n);
    auto inputs = torch::zeros({b1 - b0, L + 1}, torch::kLong);
    // With a sidecar: each target's original bytes (0 past a window's end).
    auto target_sidecar =
        sidecar_.defined() ? torch::zeros({b1 - b0, L}, torch::kInt) : torch::Tensor();
    auto from = torch::empty({b1 - b0, 1}, torch::kLong);
    auto len = torch::empty({b1 - b0, 1}, torch::kLong);
    int64_t first_scored = L - 1;  // the batch's earliest scored position
    for (int64_t i = b0; i < b1; ++i) {
      const Window& w = windows[i];
      PGOLF_CHECK(w.len <= L && w.start + w.len < stream_.numel() && w.score_from < w.len,
                  "window [{}, +{}) does not fit the stream or the window length", w.start, w.len);
      inputs[i - b0].slice(0, 0, w.len + 1).copy_(stream_.slice(0, w.start, w.start + w.len + 1));
      if (sidecar_.defined()) {
        target_sidecar[i - b0]
            .slice(0, 0, w.len)
            .copy_(sidecar_.slice(0, w.start + 1, w.start + w.len + 1));
      }
      from[i - b0][0] = w.score_from;
      len[i - b0][0] = w.len;
      first_scored = std::min(first_scored, w.score_from);
    }
    auto rows = inputs.to(device_);
    auto x = rows.slice(1, 0, L);
    auto y = rows.slice(1, 1, L + 1);
    // Positions before the batch's first scored one only give context: the
    // head and the loss run on the rest (a quarter of a window at stride L/4).
    const auto scored =
        positions.ge(from).logical_and(positions.lt(len)).slice(1, first_scored).to(device_);
    const auto nll = model_->token_losses(x, y, first_scored).to(torch::kDouble).mul(scored);
    const auto per_target = sidecar_.defined() ? target_sidecar.slice(1, first_scored).to(device_)
                                               : target_bytes(luts_, x.slice(1, first_scored),
                                                              y.slice(1, first_scored));
    const auto bytes = per_target.to(torch::kDouble).mul(scored);
    const auto sums = torch::stack({nll.sum(1), bytes.sum(1)}).to(torch::kCPU);
    const auto acc = sums.accessor<double, 2>();
    for (int64_t i = b0; i < b1; ++i) {
      const double loss = acc[0][i - b0], byte_sum = acc[1][i - b0];
      const int64_t count = windows[i].scored();
      total.loss_sum += loss;
      total.token_count += count;
      total.byte_count += byte_sum;
      if (per_window) {
        auto& r = (*per_window)[i];
        r.loss_sum += loss;
        r.token_count += count;
        r.byte_count += byte_sum;
      }
    }
    if (on_batch) on_batch(b1, n);
  }
  if (was_training) model_->train();
}

SlidingResult evaluate_sliding(GPT& model, const torch::Tensor& stream, const ByteLuts& luts,
                               const SlidingOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const int64_t T = stream.numel() - 1;
  const UnionPlan plan = union_plan(T, options.window_len, options.stride, options.reference_tail);
  const int64_t rank = options.group ? options.group->rank() : 0;
  const int64_t world = options.group ? options.group->world_size() : 1;
  const Range mine = rank_share(static_cast<int64_t>(plan.windows.size()), rank, world);

  // Per-window sums for this rank's share; zeros elsewhere, so one SUM
  // all-reduce of the whole vector gives every rank every window.
  std::vector<ValResult> per_window(plan.windows.size());
  WindowScorer scorer(model, stream, luts, options.window_len, options.batch_seqs);
  ValResult mine_total;
  std::vector<ValResult> my_windows(mine.size());
  scorer.score(std::span(plan.windows).subspan(mine.begin, mine.size()), mine_total, &my_windows,
               options.on_batch);
  std::copy(my_windows.begin(), my_windows.end(), per_window.begin() + mine.begin);

  SlidingResult out;
  out.windows = static_cast<int64_t>(plan.exact.size());
  out.exact = sum_of(per_window, plan.exact);
  all_reduce_sums(out.exact, options.group);
  finish(out.exact);
  if (options.reference_tail) {
    out.reference = sum_of(per_window, plan.reference);
    all_reduce_sums(out.reference, options.group);
    finish(out.reference);
    out.windows = static_cast<int64_t>(plan.reference.size());
  }
  out.result = options.reference_tail ? out.reference : out.exact;
  out.result.seconds = out.exact.seconds = out.reference.seconds = seconds_since(start);
  return out;
}

}  // namespace pgolf
