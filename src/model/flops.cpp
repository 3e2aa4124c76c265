#include "model/flops.h"

namespace pgolf {

double forward_flops_per_token(const ModelConfig& c, int64_t seq_len) {
  const double D = static_cast<double>(c.model_dim);
  double per_pass = D * D                                             // c_q
                    + 2.0 * D * static_cast<double>(c.kv_dim())       // c_k, c_v
                    + D * D                                           // attn.proj
                    + 2.0 * D * static_cast<double>(c.mlp_hidden());  // fc, proj
  if (c.gated_attention) per_pass += D * static_cast<double>(c.num_heads);
  const double passes = static_cast<double>(c.passes().size());  // layers + recurrence
  double once = static_cast<double>(c.vocab_size) * D;           // tied head
  if (c.bigram_vocab_size > 0 && c.bigram_dim != c.model_dim) once += c.bigram_dim * D;
  if (c.ve_enabled && c.ve_dim != c.kv_dim()) once += static_cast<double>(c.ve_dim * c.kv_dim());
  const double attention = 2.0 * D * (static_cast<double>(seq_len) + 1.0);
  return 2.0 * (passes * per_pass + once) + passes * attention;
}

double training_flops_per_token(const ModelConfig& c, int64_t seq_len) {
  return 3.0 * forward_flops_per_token(c, seq_len);
}

}  // namespace pgolf
