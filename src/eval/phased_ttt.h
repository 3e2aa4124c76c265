// #1855's scored evaluation, phased LoRA test-time training
// (docs/entries/pr1855.md §6.3; the record's eval_val_ttt_phased):
//
//   documents  the stream cut at every BOS; a document ends with the next
//              one's BOS, its last target. Stable-sorted by length, cut into
//              batches of TTT_BATCH_SIZE; batches run longest first.
//   per batch  fresh LoRA adapters per document (model/lora.h; a slot's A
//              warm-started, B = 0) and a fresh AdamW. For chunk c of
//              TTT_CHUNK_SIZE targets of every document, in order:
//                1. score it: one forward over the document's last
//                   <= TTT_EVAL_SEQ_LEN tokens up to the chunk's end, the
//                   chunk's targets added to the sums;
//                2. then, unless it is the document's last chunk, one AdamW
//                   step on the mean loss of those same targets.
//   phases     after the batch whose documents bring the scored count to
//              a boundary (PHASED_TTT_PREFIX_DOCS split in
//              PHASED_TTT_NUM_PHASES), plain SGD of every weight on the
//              first `boundary` scored documents (by batch and position),
//              concatenated, in GLOBAL_TTT_CHUNK_TOKENS chunks with a cosine
//              LR (the last chunk skipped), then fresh adapters. A phase
//              due after the last batch is skipped: no score could use it.
//
// Every score and every update goes through a LegalityAudit (the documents'
// BOS tokens are given, eval/legality.h); an update that would use an
// unscored token stops the run with an error.
//
// Ranks: rank r takes batches r, r + W, r + 2W, ... of the queue, in rounds
// every rank finishes before the next; the phase boundaries fall after whole
// rounds, and the documents a phase trains on are the ones the ranks report
// scored (all-reduced). One rank reproduces the record's single-process run
// exactly; with W ranks the result is deterministic (the record's ranks claim
// batches from a shared counter, so which documents its phases see depends on
// timing).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "config/config.h"
#include "data/tokenizer.h"
#include "eval/legality.h"
#include "eval/val_bpb.h"
#include "model/gpt.h"

namespace pgolf {

class ProcessGroup;

// A document of the stream: its BOS at `start`, `length` tokens including
// the next document's BOS; the last document ends with the stream.
struct Document {
  int64_t index = 0;
  int64_t start = 0;
  int64_t length = 0;
  int64_t targets() const { return length - 1; }
};

// The documents of a stream that begins with BOS (an error otherwise); a BOS
// that ends the stream starts none.
std::vector<Document> find_documents(const torch::Tensor& stream);

struct DocumentBatch {
  int64_t order = 0;  // its place among the batches in ascending length order
  std::vector<Document> docs;
};

// Batches of `batch_docs` documents (stable ascending length), queued by
// descending longest document (stable).
std::vector<DocumentBatch> phased_batch_queue(const std::vector<Document>& docs,
                                              int64_t batch_docs);

// Document positions of chunk `chunk` of a document with `targets` targets:
// the window [start, start + length) of inputs, its targets [scored_from,
// scored_from + scored) relative to the window.
struct ChunkWindow {
  int64_t start = 0, length = 0, scored_from = 0, scored = 0;
};
ChunkWindow phased_chunk_window(int64_t chunk, int64_t targets, int64_t chunk_size,
                                int64_t max_len);

// floor(prefix * k / phases) for k = 1..phases, prefix = min(documents, prefix_docs).
std::vector<int64_t> phase_boundaries(int64_t documents, int64_t prefix_docs, int64_t phases);

struct DocumentScore {
  double loss_sum = 0;
  double byte_count = 0;
  int64_t tokens = 0;
};

// Tests: a wrong order the audit must catch.
enum class PlantedViolation {
  kNone,
  kTrainBeforeScoring,       // the first trained chunk is trained on before it is scored
  kPhaseOnUnscoredDocument,  // the first phase also trains on a document not yet scored
};

struct PhasedTttOptions {
  PhasedTttConfig ttt;
  int64_t global_seq_len = 2048;  // the phases' sequences (EVAL_SEQ_LEN)
  // The evaluation's time cap (0: none): adapting stops once the time spent
  // plus the time to score the rest without it would pass this.
  double max_seconds = 0;
  ProcessGroup* group = nullptr;
  std::function<void(const std::string&)> print;  // log lines (rank 0)
  // After each round: batches done, total, running bpb of this rank's share.
  std::function<void(int64_t, int64_t, double)> on_batch;
  // If set: per document index, the sums this rank scored.
  std::vector<DocumentScore>* document_scores = nullptr;
  PlantedViolation plant = PlantedViolation::kNone;
};

struct PhaseReport {
  int64_t documents = 0;      // documents it trained on
  int64_t scored = 0;         // documents scored when it began
  int64_t stream_tokens = 0;  // their tokens, concatenated
  int64_t chunks = 0, steps = 0;
  double seconds = 0;
};

struct PhasedTttResult {
  ValResult result;
  LegalityReport legality;
  int64_t documents = 0, batches = 0;
  int64_t lora_steps = 0;
  int64_t lora_params_per_document = 0;
  std::vector<PhaseReport> phases;
  bool capped = false;  // the time cap stopped the adaptation early

  nlohmann::json to_json() const;
};

// Scores the stream with phased TTT. `model` ends adapted by the phases (its
// weights change); on return its modes and requires_grad flags are as before.
PhasedTttResult phased_lora_ttt(GPT& model, const torch::Tensor& stream, const ByteLuts& luts,
                                const PhasedTttOptions& options);

}  // namespace pgolf
