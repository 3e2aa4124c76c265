// FLOPs the GPT needs, for MFU. Counts matrix products only (elementwise work
// is small and not what the hardware peak measures):
//   forward  = 2 * (matrix params of all blocks + V*D for the head)
//            + 2 * D * (T + 1) per layer for causal attention (QK^T and AV over
//              the (t+1) visible positions, averaged over t)
//   training = 3 * forward (backward costs twice the forward)
// The embedding lookup is free. This is the work the model needs, not what a
// kernel happens to do (a kernel that also computes masked scores does more).
#pragma once

#include <cstdint>

#include "config/config.h"

namespace pgolf {

// `looping`: with #1855's loop on (the evaluated architecture) or off (its
// first ENABLE_LOOPING_AT of training).
double forward_flops_per_token(const ModelConfig& config, int64_t seq_len, bool looping = true);
double training_flops_per_token(const ModelConfig& config, int64_t seq_len, bool looping = true);

// A forward of one seq_len window that needs outputs only for its last
// `scored` positions (GPT::token_losses(x, y, seq_len - scored)): every pass
// but the last runs on all positions; the last computes keys and values
// everywhere and its queries, attention rows, projection and MLP, and the
// head, on the scored positions only. scored = seq_len gives the full forward.
double scoring_window_flops(const ModelConfig& config, int64_t seq_len, int64_t scored,
                            bool looping = true);

}  // namespace pgolf
