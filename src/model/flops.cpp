#include "model/flops.h"

#include "common/error.h"

namespace pgolf {

double scoring_window_flops(const ModelConfig& c, int64_t seq_len, int64_t scored, bool looping) {
  PGOLF_CHECK(scored > 0 && scored <= seq_len, "scoring_window_flops: scored {} outside [1, {}]",
              scored, seq_len);
  const double D = static_cast<double>(c.model_dim);
  const double L = static_cast<double>(seq_len), S = static_cast<double>(scored);
  // Matrix parameters a pass applies to each position: keys and values, and the rest.
  const double kv = 2.0 * D * static_cast<double>(c.kv_dim());                  // c_k, c_v
  double rest = D * D + D * D + 2.0 * D * static_cast<double>(c.mlp_hidden());  // c_q, proj, MLP
  if (c.gated_attention) rest += D * static_cast<double>(c.num_heads);
  if (c.sparse_attn_gate_enabled) rest += static_cast<double>(c.gate_window * c.num_heads);
  // Causal attention, QK^T and AV: 4 * D * (t + 1) for the query at position t.
  auto attention_rows = [&](double first, double last) {  // positions [first, last)
    return 2.0 * D * (last - first) * (first + last + 1.0);
  };
  const double passes = static_cast<double>(c.passes(looping).size());  // with recurrence
  double embeddings = 0;  // per position, every position
  if (c.bigram_vocab_size > 0 && c.bigram_dim != c.model_dim) embeddings += c.bigram_dim * D;
  if (c.ve_enabled && c.ve_dim != c.kv_dim())
    embeddings += static_cast<double>(c.ve_dim * c.kv_dim());
  const double head = static_cast<double>(c.vocab_size) * D;  // tied or not, V x D
  const double full_pass = 2.0 * L * (kv + rest) + attention_rows(0, L);
  const double last_pass = 2.0 * L * kv + 2.0 * S * rest + attention_rows(L - S, L);
  return (passes - 1.0) * full_pass + last_pass + 2.0 * L * embeddings + 2.0 * S * head;
}

double forward_flops_per_token(const ModelConfig& c, int64_t seq_len, bool looping) {
  return scoring_window_flops(c, seq_len, seq_len, looping) / static_cast<double>(seq_len);
}

double training_flops_per_token(const ModelConfig& c, int64_t seq_len, bool looping) {
  return 3.0 * forward_flops_per_token(c, seq_len, looping);
}

}  // namespace pgolf
