// Causal self-attention with every variant of the entries (spec
// model-and-training §3.6), in this order:
//   q, k, v = u Wq^T, u Wk^T, u Wv^T (+ value embedding on v)
//   value residual (layer 0's values mixed in), QK-norm, (partial) RoPE,
//   q *= q_gain, causal GQA softmax attention, XSA, sigmoid head gates, Wo.
// The matrices are passed in (LayerMatrices) because they live in different
// places per weight layout: this module's own CastedLinears, a shared core,
// or slices of #1406's banks.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <optional>
#include <vector>

#include "config/config.h"
#include "model/layers.h"
#include "model/lora.h"
#include "model/rotary.h"

namespace pgolf {

// The six matrices one layer uses, (out, in) each, fp32 masters; with an
// observer, each matrix's input is shown to it under prefix + "attn.c_q.weight"
// (c_k, c_v, proj) and prefix + "mlp.fc.weight" (proj).
struct LayerMatrices {
  torch::Tensor wq, wk, wv, wo, w_up, w_down;
  const InputObserver* observer = nullptr;
  std::string prefix = {};  // "blocks.{l}." or "cores.{c}."
};

// Causal softmax attention of the queries at positions [T - Tq, T) over all T
// keys, q (B, H, Tq, Dh), k and v (B, Hkv, T, Dh), grouped-query when Hkv < H.
torch::Tensor causal_attention(const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v);

// Exclusive self-attention: removes from each head's output y its component
// along the (normalised) value vector of the same position and KV head.
// y (B, H, T, Dh), v (B, Hkv, T, Dh) with H a multiple of Hkv.
torch::Tensor exclusive_self_attention(const torch::Tensor& y, const torch::Tensor& v);

class CausalSelfAttentionImpl : public torch::nn::Module {
 public:
  // own_matrices: register c_q, c_k, c_v, proj here (blocks and cores
  // layouts); false for the banks layout. use_xsa: this core has XSA.
  CausalSelfAttentionImpl(const ModelConfig& config, bool own_matrices, bool use_xsa);

  // u: normalised input (B, T, D). ve: value embedding for this layer
  // (B, T, kv_dim) or undefined. v0: layer 0's values for the value residual;
  // the first layer that runs sets it. query_from > 0: the output only for
  // positions [query_from, T), (B, T - query_from, D); keys and values still
  // cover every position, so those rows equal the full output's.
  // segments: per-row document boundaries (model/documents.h) or null for
  // plain causal rows; with segments, query_from must be 0. lora: test-time
  // adapters on q, k, v and the output (model/lora.h).
  torch::Tensor forward(const torch::Tensor& u, const LayerMatrices& w, const torch::Tensor& ve,
                        torch::Tensor& v0, int64_t query_from = 0,
                        const std::vector<std::vector<int64_t>>* segments = nullptr,
                        const PassAdapters& lora = {});

  bool use_xsa() const { return use_xsa_; }
  Rotary& rotary() { return rotary_; }

  torch::Tensor q_gain;     // (H)
  torch::Tensor vr_lambda;  // (2), value_residual_mode = lambda
  torch::Tensor vrl_alpha;  // (1), value_residual_mode = sigmoid
  CastedLinear c_q{nullptr}, c_k{nullptr}, c_v{nullptr}, proj{nullptr};
  torch::nn::Linear attn_gate{nullptr};  // gated_attention: (H, D) + bias (H)
  // #1855's sparse gate: y_h *= sigmoid(scale * attn_gate_w[h] . u[:gate_window]).
  torch::Tensor attn_gate_w;  // (H, gate_window)

 private:
  torch::Tensor mix_value_residual(const torch::Tensor& v, torch::Tensor& v0);
  torch::Tensor sparse_gate(const torch::Tensor& u) const;  // (B, T, H)
  int64_t num_heads_, num_kv_heads_, head_dim_;
  bool use_xsa_;
  double sparse_gate_scale_;
  std::optional<ValueResidualMode> vr_mode_;  // nullopt: no value residual
  Rotary rotary_;
};
TORCH_MODULE(CausalSelfAttention);

// proj(act(fc u)) with act = relu^2 or leaky_relu(slope)^2.
class MLPImpl : public torch::nn::Module {
 public:
  MLPImpl(const ModelConfig& config, bool own_matrices);
  torch::Tensor forward(const torch::Tensor& u, const LayerMatrices& w,
                        const BatchedLora* lora = nullptr);
  CastedLinear fc{nullptr}, proj{nullptr};

 private:
  double leaky_slope_;
};
TORCH_MODULE(MLP);

}  // namespace pgolf
