// The legality audit of test-time training (spec quantize-eval-ttt §5.0): the
// challenge allows training only on validation tokens that have already been
// scored. The audit sees every scoring and every update, in order, and
// records per chunk when it was scored and when its tokens were first used,
// and every update that used a token before it was scored.
//
// Positions are indices into the validation stream V. A scored window marks
// its targets; position 0 is never a target and counts as scored from the
// start (it is the context every evaluation begins with). An update "uses"
// every position it reads, inputs and targets alike. An evaluation that works
// per document (#1855's phased TTT) also declares the documents' BOS tokens
// as given: the split into documents is its premise, not something learned
// from scored text, so reading a document's first token needs no earlier
// document to be scored.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace pgolf {

struct ChunkAudit {
  int64_t scored_event = -1;        // the audit's event counter when the chunk was scored
  int64_t first_update_event = -1;  // ... when an update first used its tokens (-1: never)
  int64_t first_target = -1, last_target = -1;  // scored targets (inclusive)
  int64_t updates = 0;                          // updates that used its tokens
};

struct LegalityReport {
  bool score_first = true;  // no update used a position before it was scored
  int64_t updates = 0;
  int64_t violations = 0;       // updates that did
  int64_t given = 0;            // positions declared known without scoring (BOS)
  std::string first_violation;  // what the first of them was
  std::vector<ChunkAudit> chunks;

  nlohmann::json to_json() const;  // the summary, with the per-chunk table's totals
};

class LegalityAudit {
 public:
  // `stream_len` = len(V); `chunk_tokens` = C (the chunk of a position is p / C).
  LegalityAudit(int64_t stream_len, int64_t chunk_tokens);

  // Targets [first, last] (stream positions, inclusive) have been scored.
  void scored(int64_t first, int64_t last);
  // Position p is known before any scoring (a document's BOS token).
  void given(int64_t position);
  // An update read positions [first, last]; returns false (and records the
  // violation) if any of them had not been scored.
  bool used_for_update(int64_t first, int64_t last);

  const LegalityReport& report() const { return report_; }

 private:
  ChunkAudit& chunk_of(int64_t position);
  std::vector<bool> scored_;
  // scored_[0, prefix_) are all set: most checks are one comparison.
  int64_t prefix_ = 1;
  int64_t chunk_tokens_;
  int64_t event_ = 0;
  LegalityReport report_;
};

}  // namespace pgolf
