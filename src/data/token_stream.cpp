// TokenStream and DistributedTokenLoader: same token order as the reference's
// classes, so a run reads exactly the tokens the PyTorch script would.
#include "data/token_stream.h"

#include <algorithm>

#include "common/error.h"
#include "data/shard.h"

namespace pgolf {

TokenStream::TokenStream(const std::string& glob, int64_t vocab_size)
    : files_(shard_files(glob, "training shards")), vocab_size_(vocab_size) {
  load(0);
}

void TokenStream::load(int64_t file_index) {
  tokens_ = read_shard(files_[static_cast<size_t>(file_index)], vocab_size_);
  file_index_ = file_index;
  offset_ = 0;
}

void TokenStream::advance_file() { load((file_index_ + 1) % static_cast<int64_t>(files_.size())); }

std::vector<uint16_t> TokenStream::take(int64_t n) {
  PGOLF_CHECK(n >= 0, "TokenStream::take: negative count {}", n);
  std::vector<uint16_t> out;
  out.reserve(static_cast<size_t>(n));
  // Empty shards are legal but would make the wrap-around spin forever if all
  // of them were empty: count the shards skipped without progress.
  int64_t empty_in_a_row = 0;
  while (static_cast<int64_t>(out.size()) < n) {
    const int64_t available = static_cast<int64_t>(tokens_.size()) - offset_;
    if (available <= 0) {
      PGOLF_CHECK(++empty_in_a_row <= static_cast<int64_t>(files_.size()),
                  "training shards hold no tokens (all {} files are empty, first: {})",
                  files_.size(), files_.front().string());
      advance_file();
      continue;
    }
    empty_in_a_row = 0;
    const int64_t k = std::min(n - static_cast<int64_t>(out.size()), available);
    out.insert(out.end(), tokens_.begin() + offset_, tokens_.begin() + offset_ + k);
    offset_ += k;
  }
  return out;
}

std::vector<uint16_t> TokenStream::take_documents(int64_t n) {
  PGOLF_CHECK(n > 0, "TokenStream::take_documents: count {} must be positive", n);
  const auto size = [&] { return static_cast<int64_t>(tokens_.size()); };
  for (size_t tried = 0;; ++tried) {
    if (offset_ == 0) {
      // A shard is read from its first document: the record's cursor = bos_idx[0].
      const auto bos = std::find(tokens_.begin(), tokens_.end(), kDocumentStart);
      PGOLF_CHECK(bos != tokens_.end() || tokens_.empty(),
                  "TRAIN_LOADER=documents: {} holds no BOS token (id {}), so no document starts",
                  files_[static_cast<size_t>(file_index_)].string(), kDocumentStart);
      offset_ = bos - tokens_.begin();
    }
    if (!tokens_.empty() && offset_ + n <= size()) break;
    PGOLF_CHECK(tried < files_.size(),
                "TRAIN_LOADER=documents: no training shard holds a step of {} tokens after its "
                "first BOS (lower TRAIN_BATCH_TOKENS or use longer shards)",
                n);
    advance_file();  // the rest of this shard is skipped, as the record does
  }
  std::vector<uint16_t> out(tokens_.begin() + offset_, tokens_.begin() + offset_ + n);
  offset_ += n;
  return out;
}

void TokenStream::seek(Position position) {
  const int64_t num_files = static_cast<int64_t>(files_.size());
  PGOLF_CHECK(position.file_index >= 0 && position.file_index < num_files,
              "cannot resume the token stream at file {}: there are {} training shards",
              position.file_index, num_files);
  if (position.file_index != file_index_) load(position.file_index);
  PGOLF_CHECK(position.offset >= 0 && position.offset <= static_cast<int64_t>(tokens_.size()),
              "cannot resume the token stream at offset {} of {}: it holds {} tokens",
              position.offset, files_[static_cast<size_t>(position.file_index)].string(),
              tokens_.size());
  offset_ = position.offset;
}

DistributedTokenLoader::DistributedTokenLoader(const std::string& glob, int64_t vocab_size,
                                               int64_t rank, int64_t world_size,
                                               bool pack_documents)
    : stream_(glob, vocab_size),
      rank_(rank),
      world_size_(world_size),
      pack_documents_(pack_documents) {
  PGOLF_CHECK(world_size > 0 && rank >= 0 && rank < world_size,
              "token loader: rank {} is not in [0, world_size={})", rank, world_size);
}

TokenBatch DistributedTokenLoader::next_batch(int64_t global_tokens, int64_t seq_len,
                                              int64_t grad_accum_steps) {
  PGOLF_CHECK(seq_len > 0 && grad_accum_steps > 0,
              "token loader: seq_len ({}) and grad_accum_steps ({}) must be positive", seq_len,
              grad_accum_steps);
  const int64_t local = global_tokens / (world_size_ * grad_accum_steps);
  if (pack_documents_) {
    // #1855's DocumentPackingLoader: one row of `local` tokens per rank, cut
    // from the shard without crossing into the next.
    PGOLF_CHECK(local > 0, "TRAIN_BATCH_TOKENS={} gives no tokens per rank", global_tokens);
    const int64_t span = local + 1;
    const std::vector<uint16_t> chunk = stream_.take_documents(world_size_ * span);
    torch::Tensor mine = torch::empty({span}, torch::kInt64);
    std::copy(chunk.begin() + rank_ * span, chunk.begin() + (rank_ + 1) * span,
              mine.data_ptr<int64_t>());
    return {mine.slice(0, 0, local).view({1, local}), mine.slice(0, 1, span).view({1, local})};
  }
  PGOLF_CHECK(local > 0 && local % seq_len == 0,
              "TRAIN_BATCH_TOKENS={} / (world_size {} x grad_accum_steps {}) = {} tokens per "
              "micro-batch, which is not a positive multiple of TRAIN_SEQ_LEN={}",
              global_tokens, world_size_, grad_accum_steps, local, seq_len);
  const int64_t span = local + 1;
  const std::vector<uint16_t> chunk = stream_.take(world_size_ * span);
  torch::Tensor mine = torch::empty({span}, torch::kInt64);
  std::copy(chunk.begin() + rank_ * span, chunk.begin() + (rank_ + 1) * span,
            mine.data_ptr<int64_t>());
  return {mine.slice(0, 0, local).view({-1, seq_len}), mine.slice(0, 1, span).view({-1, seq_len})};
}

}  // namespace pgolf
