// Autoregressive sampling from a trained model (`pgolf generate`), so a
// person can read what it learned: temperature, top-k, a seeded generator.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <vector>

#include "config/config.h"
#include "model/gpt.h"

namespace pgolf {

struct SampleOptions {
  double temperature = 0.8;  // 0: greedy (always the most likely token)
  int64_t top_k = 50;        // sample among the k most likely tokens; 0: all
  int64_t max_tokens = 128;
  uint64_t seed = 1337;
  int stop_token = -1;  // stop when this token is drawn (BOS: a new document begins)
};

// Continues `context` (token ids, at least one) by up to max_tokens tokens and
// returns only the new ones. The model sees at most `window` trailing tokens
// (its training sequence length: RoPE was trained on no more). `on_token` is
// called with each new token as it is drawn.
std::vector<int> sample_tokens(GPT& model, std::vector<int> context, int64_t window,
                               const SampleOptions& options,
                               const std::function<void(int)>& on_token = {});

}  // namespace pgolf
