#include "data/prefetch_loader.h"

#include <utility>

namespace pgolf {

PrefetchingTokenLoader::PrefetchingTokenLoader(std::unique_ptr<DistributedTokenLoader> loader,
                                               Shape shape, bool pin_memory)
    : loader_(std::move(loader)),
      shape_(shape),
      pin_memory_(pin_memory),
      handed_out_(loader_->position()) {
  prefetch();
}

PrefetchingTokenLoader::~PrefetchingTokenLoader() { wait_for_pending(); }

void PrefetchingTokenLoader::prefetch() {
  // Only the background task touches loader_ until its future is consumed.
  pending_ = std::async(std::launch::async, [this] {
    Prepared p;
    p.batch = loader_->next_batch(shape_.global_tokens, shape_.seq_len, shape_.grad_accum_steps);
    if (pin_memory_) {
      p.batch.inputs = p.batch.inputs.pin_memory();
      p.batch.targets = p.batch.targets.pin_memory();
    }
    p.after = loader_->position();
    return p;
  });
}

void PrefetchingTokenLoader::wait_for_pending() {
  if (pending_.valid()) pending_.wait();
}

TokenBatch PrefetchingTokenLoader::next_batch() {
  // get() rethrows the task's error, as the plain loader would have thrown it.
  if (!pending_.valid()) prefetch();
  Prepared p = pending_.get();
  handed_out_ = p.after;
  prefetch();
  return std::move(p.batch);
}

void PrefetchingTokenLoader::seek(TokenStream::Position position) {
  wait_for_pending();
  pending_ = {};  // the prefetched batch (or its error) belongs to the old position
  loader_->seek(position);
  handed_out_ = position;
  prefetch();
}

}  // namespace pgolf
