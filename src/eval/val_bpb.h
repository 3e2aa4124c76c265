// Validation loss and bits per byte exactly as the challenge computes them
// (spec quantize-eval-ttt §1.5-1.6, the reference's eval_val):
//
//   the stream V is cut into non-overlapping sequences of `seq_len`;
//   loss_sum   += mean CE of a batch * #targets     (float64)
//   byte_count += sum of bytes(prev, target)         (float64)
//   val_loss = loss_sum / token_count
//   val_bpb  = val_loss / ln 2 * token_count / byte_count
//
// bytes(prev, target) comes from the tokenizer's piece-length tables, or, when
// the luts carry a validation byte sidecar (CaseOps data), from the sidecar:
// the target at stream position i counts sidecar[i] bytes (the record's
// eval_val and _accumulate_bpb). The same holds for the sliding windows and
// score-first TTT (eval/sliding.h), which score through WindowScorer.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "config/config.h"
#include "data/tokenizer.h"
#include "model/gpt.h"

namespace pgolf {

struct ValResult {
  double val_loss = 0;  // nats per token
  double val_bpb = 0;
  double loss_sum = 0;
  int64_t token_count = 0;
  double byte_count = 0;
  double seconds = 0;
};

struct ValOptions {
  int64_t seq_len = 1024;
  int64_t batch_seqs = 32;  // sequences per forward on this rank
  int64_t rank = 0;
  int64_t world_size = 1;
  // If set, receives the loss of every scored target of this rank, in stream order.
  std::vector<float>* token_losses = nullptr;
  // Called after each batch with (sequences done, sequences total).
  std::function<void(int64_t, int64_t)> on_batch;
};

// The validation split of `config` (all val shards, trimmed to whole
// sequences of TRAIN_SEQ_LEN plus one token), cut to its first VAL_MAX_TOKENS
// tokens when that is set (then re-trimmed), as a 1-D int64 CPU tensor.
torch::Tensor validation_stream(const Config& config);

// The byte tables val_bpb counts with on `stream` (the validation stream of
// `config`): the tokenizer's piece-length tables, plus the val shards' byte
// sidecar when they have one (data/shard.h), cut to the stream's length. A
// sidecar that does not match its shard is an error, never a fall-back.
ByteLuts validation_byte_luts(const Config& config, const Tokenizer& tokenizer,
                              const torch::Tensor& stream);

// Fails unless a sidecar in `luts`, if any, has one entry per token of `stream`.
void check_sidecar_fits(const ByteLuts& luts, const torch::Tensor& stream);

// `tokens`: the trimmed validation stream (1-D int64, length k*seq_len + 1).
// Sums are over this rank's share only; reduce across ranks, then finish().
// With document attention (#1855) each batch is one packed row.
ValResult evaluate_val(GPT& model, const torch::Tensor& tokens, const ByteLuts& luts,
                       const ValOptions& options);

// val_loss and val_bpb from the three sums (after any cross-rank reduction).
void finish(ValResult& result);

class ProcessGroup;
// Sums the three counters across the group's ranks (no-op without a group),
// then finish()es.
void all_reduce_sums(ValResult& result, ProcessGroup* group);

// Sequences per forward for VAL_BATCH_SIZE tokens split over world * accum.
int64_t val_batch_seqs(int64_t val_batch_size, int64_t world_size, int64_t grad_accum,
                       int64_t seq_len);

}  // namespace pgolf
