// Token-level inputs besides the token embedding (spec model-and-training
// §3.2, §3.3, §3.6.3): hashed n-gram embeddings, the SmearGate and the shared
// value embedding. State-dict names follow the scripts (bigram.*, smear.gate,
// ve_shared.*).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/pimpl.h>

#include "model/layers.h"

namespace pgolf {

// Bucket of every position's bigram (prev, cur), per row in int32 exactly as
// the scripts: bucket M = num_buckets-1 at t = 0, else
// ((36313*cur) XOR (27191*prev)) mod M. Input (..., T) integer ids.
torch::Tensor bigram_hash(const torch::Tensor& ids, int64_t num_buckets);
// Trigram buckets: M at t = 0, 1, else (36313*cur XOR 27191*prev XOR 51497*prev2) mod M.
torch::Tensor trigram_hash(const torch::Tensor& ids, int64_t num_buckets);

// scale * proj(table[bigram] (+ table[trigram])) -> (B, T, model_dim).
class BigramHashImpl : public torch::nn::Module {
 public:
  BigramHashImpl(int64_t num_buckets, int64_t dim, int64_t model_dim, bool trigram);
  torch::Tensor forward(const torch::Tensor& ids, torch::ScalarType dtype);

  torch::Tensor scale;  // 0-d, init 0.05
  torch::nn::Embedding embed{nullptr};
  CastedLinear proj{nullptr};  // absent when dim == model_dim

 private:
  int64_t num_buckets_;
  bool trigram_;
};
TORCH_MODULE(BigramHash);

// x[t] <- (1 - g) x[t] + g x[t-1] with g = sigmoid(gate) per channel, x[-1] = 0.
class SmearGateImpl : public torch::nn::Module {
 public:
  explicit SmearGateImpl(int64_t dim);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor gate;  // (dim), init 0
};
TORCH_MODULE(SmearGate);

// #1855's SmearGate on the raw embedding e (B, T, D), before its RMSNorm:
//   x[t] = e[t] + lambda * sigmoid(w . e[t][:window]) * e[t-1] * (ids[t] != BOS)
// for t >= 1, x[0] = e[0]; the gate reads the current token, the previous term
// is the raw previous embedding, and a BOS never takes from the document
// before it. gate_weight (1, window), lambda (1).
torch::Tensor bos_masked_smear(const torch::Tensor& e, const torch::Tensor& ids,
                               const torch::Tensor& gate_weight, const torch::Tensor& lambda);

// scale * proj(table[ids]) -> (B, T, kv_dim): values added to the chosen
// layers' V projections (each layer also multiplies its own scalar).
class ValueEmbeddingImpl : public torch::nn::Module {
 public:
  ValueEmbeddingImpl(int64_t vocab_size, int64_t dim, int64_t out_dim);
  torch::Tensor forward(const torch::Tensor& ids, torch::ScalarType dtype);

  torch::Tensor scale;  // 0-d, init 0.1
  torch::nn::Embedding embed{nullptr};
  CastedLinear proj{nullptr};  // absent when dim == out_dim
};
TORCH_MODULE(ValueEmbedding);

}  // namespace pgolf
