// The training data loader of the reference (spec model-and-training §4.1):
// TokenStream reads the sorted train shards one at a time, front to back, and
// wraps to the first shard after the last; DistributedTokenLoader cuts each
// chunk of the stream into one span per rank. No shuffling. #1855's document
// packing is the second mode (TRAIN_LOADER=documents).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace pgolf {

class TokenStream {
 public:
  // Where the next token comes from; saved in checkpoints to resume the stream.
  struct Position {
    int64_t file_index = 0;
    int64_t offset = 0;
    bool operator==(const Position&) const = default;
  };

  // vocab_size <= 0 skips the token-id check when a shard is loaded.
  TokenStream(const std::string& glob, int64_t vocab_size);

  // The next n tokens, concatenated across shard boundaries.
  std::vector<uint16_t> take(int64_t n);
  // #1855's document packing: n tokens from one shard, read from its first
  // BOS; when they do not fit in the rest of the shard, the next shard.
  std::vector<uint16_t> take_documents(int64_t n);
  static constexpr uint16_t kDocumentStart = 1;  // BOS

  Position position() const { return {file_index_, offset_}; }
  void seek(Position position);
  const std::vector<std::filesystem::path>& files() const { return files_; }

 private:
  void load(int64_t file_index);
  void advance_file();

  std::vector<std::filesystem::path> files_;
  int64_t vocab_size_;
  int64_t file_index_ = 0;
  int64_t offset_ = 0;
  std::vector<uint16_t> tokens_;  // the current shard
};

// One micro-batch for this rank: int64 CPU tensors of shape [local/seq_len, seq_len];
// targets are inputs shifted by one token.
struct TokenBatch {
  torch::Tensor inputs;
  torch::Tensor targets;
};

class DistributedTokenLoader {
 public:
  // pack_documents: #1855's loader (TRAIN_LOADER=documents): each rank's
  // micro-batch is one row (1, local) and the stream never crosses a shard.
  DistributedTokenLoader(const std::string& glob, int64_t vocab_size, int64_t rank,
                         int64_t world_size, bool pack_documents = false);

  // local = global_tokens / (world_size · grad_accum_steps); the stream yields
  // world_size · (local + 1) tokens and this rank keeps span number `rank`.
  TokenBatch next_batch(int64_t global_tokens, int64_t seq_len, int64_t grad_accum_steps);

  TokenStream::Position position() const { return stream_.position(); }
  void seek(TokenStream::Position position) { stream_.seek(position); }

 private:
  TokenStream stream_;
  int64_t rank_;
  int64_t world_size_;
  bool pack_documents_;
};

}  // namespace pgolf
