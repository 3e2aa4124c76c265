// Document boundaries inside a packed row (#1855's cu_seqlens,
// docs/entries/pr1855.md §3.10): attention restarts at every BOS and every
// `max_len` tokens inside a long document, so no position attends across a
// document, and no context is longer than `max_len`.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace pgolf {

// The BOS token of the challenge's shards (the tokenizers' <s>).
inline constexpr int64_t kBosId = 1;

// Segment starts of each row of `ids` (B, T), then T: the record's
// _build_cu_seqlens without its bucket padding (which only adds empty
// segments). A row that does not begin with BOS starts a segment at 0 anyway.
// max_len 0: no cap.
std::vector<std::vector<int64_t>> document_segments(const torch::Tensor& ids, int64_t max_len);

// Causal attention inside each segment of each row: q (B, H, T, Dh), k and v
// (B, Hkv, T, Dh); segments as document_segments returns them. Returns
// (B, H, T, Dh), equal to attention with a block-diagonal causal mask.
torch::Tensor segmented_causal_attention(const torch::Tensor& q, const torch::Tensor& k,
                                         const torch::Tensor& v,
                                         const std::vector<std::vector<int64_t>>& segments);

}  // namespace pgolf
