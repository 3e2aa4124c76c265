#include "eval/legality.h"

#include <fmt/format.h>

#include <algorithm>

#include "common/error.h"

namespace pgolf {

nlohmann::json LegalityReport::to_json() const {
  int64_t scored = 0, trained = 0;
  for (const auto& c : chunks) {
    scored += c.scored_event >= 0;
    trained += c.updates > 0;
  }
  return {{"score_first", score_first},
          {"updates", updates},
          {"violations", violations},
          {"given_positions", given},
          {"first_violation", first_violation},
          {"chunks", static_cast<int64_t>(chunks.size())},
          {"chunks_scored", scored},
          {"chunks_trained", trained}};
}

LegalityAudit::LegalityAudit(int64_t stream_len, int64_t chunk_tokens)
    : scored_(static_cast<size_t>(stream_len), false), chunk_tokens_(chunk_tokens) {
  PGOLF_CHECK(stream_len > 1 && chunk_tokens > 0, "legality audit: empty stream or chunk");
  scored_[0] = true;
  report_.chunks.resize(static_cast<size_t>((stream_len - 1 + chunk_tokens - 1) / chunk_tokens));
}

ChunkAudit& LegalityAudit::chunk_of(int64_t position) {
  const int64_t c = std::max<int64_t>(position - 1, 0) / chunk_tokens_;  // targets 1..C: chunk 0
  return report_.chunks[std::min<size_t>(static_cast<size_t>(c), report_.chunks.size() - 1)];
}

void LegalityAudit::scored(int64_t first, int64_t last) {
  PGOLF_CHECK(first >= 1 && last < static_cast<int64_t>(scored_.size()) && first <= last,
              "legality audit: scored targets [{}, {}] outside the stream", first, last);
  const int64_t event = event_++;
  for (int64_t p = first; p <= last; ++p) scored_[p] = true;
  while (prefix_ < static_cast<int64_t>(scored_.size()) && scored_[prefix_]) ++prefix_;
  for (int64_t p = first; p <= last;) {
    ChunkAudit& c = chunk_of(p);
    if (c.scored_event < 0) c.scored_event = event;
    c.first_target = c.first_target < 0 ? p : std::min(c.first_target, p);
    const int64_t chunk_end = (std::max<int64_t>(p - 1, 0) / chunk_tokens_ + 1) * chunk_tokens_;
    const int64_t upto = std::min(last, chunk_end);
    c.last_target = std::max(c.last_target, upto);
    p = upto + 1;
  }
}

void LegalityAudit::given(int64_t position) {
  PGOLF_CHECK(position >= 0 && position < static_cast<int64_t>(scored_.size()),
              "legality audit: given position {} outside the stream", position);
  if (scored_[position]) return;
  scored_[position] = true;
  ++report_.given;
  while (prefix_ < static_cast<int64_t>(scored_.size()) && scored_[prefix_]) ++prefix_;
}

bool LegalityAudit::used_for_update(int64_t first, int64_t last) {
  PGOLF_CHECK(first >= 0 && last < static_cast<int64_t>(scored_.size()) && first <= last,
              "legality audit: update positions [{}, {}] outside the stream", first, last);
  const int64_t event = event_++;
  ++report_.updates;
  for (int64_t p = std::max<int64_t>(first, 1); p <= last;) {
    ChunkAudit& c = chunk_of(p);
    if (c.first_update_event < 0) c.first_update_event = event;
    ++c.updates;
    const int64_t chunk_end = (std::max<int64_t>(p - 1, 0) / chunk_tokens_ + 1) * chunk_tokens_;
    p = std::min(last, chunk_end) + 1;
  }
  if (last < prefix_) return true;
  for (int64_t p = std::max(first, prefix_); p <= last; ++p) {
    if (!scored_[p]) {
      ++report_.violations;
      if (report_.score_first) {
        report_.first_violation =
            fmt::format("update {} used stream positions [{}, {}]; position {} had not been scored",
                        event, first, last, p);
      }
      report_.score_first = false;
      return false;
    }
  }
  return true;
}

}  // namespace pgolf
