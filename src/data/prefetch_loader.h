// Data loading overlapped with compute: while a training step runs on the
// current micro-batch, a background thread cuts the next one from the token
// stream (reading the next shard when the stream crosses into it) and, for a
// CUDA run, pins it so that its host-to-device copy can be asynchronous.
// Batches, their order and the checkpointed positions are exactly those of the
// wrapped DistributedTokenLoader.
#pragma once

#include <future>
#include <memory>

#include "data/token_stream.h"

namespace pgolf {

class PrefetchingTokenLoader {
 public:
  // What every next_batch() asks of the loader (DistributedTokenLoader::next_batch).
  struct Shape {
    int64_t global_tokens = 0;
    int64_t seq_len = 0;
    int64_t grad_accum_steps = 1;
  };

  // Starts preparing the first batch at once. pin_memory needs CUDA.
  PrefetchingTokenLoader(std::unique_ptr<DistributedTokenLoader> loader, Shape shape,
                         bool pin_memory);
  ~PrefetchingTokenLoader();
  PrefetchingTokenLoader(const PrefetchingTokenLoader&) = delete;
  PrefetchingTokenLoader& operator=(const PrefetchingTokenLoader&) = delete;

  // The next micro-batch; an error met while preparing it (a malformed shard)
  // is thrown here.
  TokenBatch next_batch();

  // The stream position after the last batch handed out (not the prefetched
  // one): what a checkpoint saves, so that a resumed run reads the same tokens.
  TokenStream::Position position() const { return handed_out_; }

  // Drops the prefetched batch and continues from `position`.
  void seek(TokenStream::Position position);

 private:
  struct Prepared {
    TokenBatch batch;
    TokenStream::Position after;
  };
  void prefetch();
  void wait_for_pending();

  std::unique_ptr<DistributedTokenLoader> loader_;
  Shape shape_;
  bool pin_memory_;
  TokenStream::Position handed_out_;
  std::future<Prepared> pending_;
};

}  // namespace pgolf
