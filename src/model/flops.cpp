#include "model/flops.h"

namespace pgolf {

double forward_flops_per_token(const ModelConfig& c, int64_t seq_len) {
  const double D = static_cast<double>(c.model_dim);
  const double per_layer_params = D * D                                             // c_q
                                  + 2.0 * D * static_cast<double>(c.kv_dim())       // c_k, c_v
                                  + D * D                                           // attn.proj
                                  + 2.0 * D * static_cast<double>(c.mlp_hidden());  // fc, proj
  const double layers = static_cast<double>(c.num_layers);
  const double head = static_cast<double>(c.vocab_size) * D;
  const double attention = 2.0 * D * (static_cast<double>(seq_len) + 1.0);
  return 2.0 * (layers * per_layer_params + head) + layers * attention;
}

double training_flops_per_token(const ModelConfig& c, int64_t seq_len) {
  return 3.0 * forward_flops_per_token(c, seq_len);
}

}  // namespace pgolf
