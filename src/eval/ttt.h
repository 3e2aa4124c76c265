// Score-first test-time training (spec quantize-eval-ttt §5.1): the
// validation stream is cut into chunks of C tokens; each sliding window
// belongs to the chunk of its first scored position. For each chunk in order:
//
//   1. score its windows (inference mode: the weights cannot change), adding
//      to the running sums -- the only numbers the result reports;
//   2. unless it is the last chunk: train on it, E epochs over its
//      floor(len/L) sequences of TRAIN_SEQ_LEN, batch_seqs per step, with
//      the update rule of TTT_MODE (ttt_optimizer.h), grad-norm clip, and the
//      LR schedule (cosine across chunks, per step, or constant).
//
// Every scoring and every update goes through a LegalityAudit; an update that
// would use a token before it was scored stops the run with an error, so the
// result is score-first by construction (and the audit's report says so).
//
// Multi-process: each chunk's windows and its training sequences are split
// across ranks; gradients are averaged every step, so every rank holds the
// same weights; the sums are all-reduced at the end.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "config/config.h"
#include "data/tokenizer.h"
#include "eval/legality.h"
#include "eval/val_bpb.h"
#include "eval/windows.h"
#include "model/gpt.h"

namespace pgolf {

class ProcessGroup;

struct TttOptions {
  TttConfig ttt;
  int64_t train_seq_len = 1024;  // training sequences (the references: TRAIN_SEQ_LEN)
  int64_t window_len = 1024;     // scoring windows
  int64_t stride = 64;
  int64_t eval_batch_seqs = 32;
  bool reference_tail = false;                    // score the references' window plan
  torch::ScalarType ns_dtype = torch::kBFloat16;  // muon's Newton-Schulz
  ProcessGroup* group = nullptr;
  std::function<void(const std::string&)> print;  // progress lines (rank 0)
  // After each chunk (every rank): chunks done, total, running bpb of this
  // rank's share.
  std::function<void(int64_t, int64_t, double)> on_chunk;
  // Test hook: train each chunk *before* scoring it. The audit must catch it.
  bool deliberately_train_first = false;
};

struct TttResult {
  ValResult result;  // the cumulative score of the single pass
  LegalityReport legality;
  int64_t chunks = 0;
  int64_t trained_chunks = 0;
  int64_t steps = 0;
  int64_t windows = 0;
  int64_t trainable = 0, frozen = 0;
  double train_seconds = 0;  // of result.seconds, the part spent adapting
  bool capped = false;       // TTT_MAX_SECONDS stopped the adaptation early

  nlohmann::json to_json() const;
};

// Adapts `model` in place. Throws pgolf::Error if an update would use an
// unscored token.
TttResult score_first_ttt(GPT& model, const torch::Tensor& stream, const ByteLuts& luts,
                          const TttOptions& options);

// Windows grouped by the chunk of their first scored position,
// min((start + score_from) / C, chunks - 1), in order (§5.1).
std::vector<std::vector<Window>> windows_by_chunk(const std::vector<Window>& windows,
                                                  int64_t chunk_tokens, int64_t chunks);

// Epochs for a chunk whose scored tokens had mean NLL `entropy` nats (#1406
// 03-28): base+1 above 2.1, max(base-1, 1) below 1.75, else base.
int64_t entropy_adapted_epochs(double entropy, int64_t base);

// The learning rate at chunk `c` of `chunks` / step `step` of `steps`.
double ttt_learning_rate(const TttConfig& ttt, int64_t c, int64_t chunks, int64_t step,
                         int64_t steps);

}  // namespace pgolf
