#include "model/attention.h"

#include <torch/nn/functional/linear.h>
#include <torch/nn/functional/normalization.h>

#include "common/error.h"
#include "common/fast_kernels.h"
#include "model/documents.h"

namespace pgolf {

torch::Tensor exclusive_self_attention(const torch::Tensor& y, const torch::Tensor& v) {
  const int64_t B = y.size(0), H = y.size(1), T = y.size(2), Dh = y.size(3);
  const int64_t Hkv = v.size(1);
  // Query head h reads KV head h / (H/Hkv): group the heads by KV head.
  auto y_g = y.view({B, Hkv, H / Hkv, T, Dh});
  namespace F = torch::nn::functional;
  auto vn = F::normalize(v, F::NormalizeFuncOptions().dim(-1)).unsqueeze(2);
  auto along = (y_g * vn).sum(-1, /*keepdim=*/true) * vn;
  return (y_g - along).view({B, H, T, Dh});
}

CausalSelfAttentionImpl::CausalSelfAttentionImpl(const ModelConfig& config, bool own_matrices,
                                                 bool use_xsa)
    : num_heads_(config.num_heads),
      num_kv_heads_(config.num_kv_heads),
      head_dim_(config.head_dim()),
      use_xsa_(use_xsa),
      sparse_gate_scale_(config.sparse_attn_gate_scale),
      vr_mode_(config.value_residual ? std::optional(config.value_residual_mode) : std::nullopt),
      rotary_(config.effective_rope_dims(), config.rope_base, config.effective_ntk_ref_len()) {
  const int64_t D = config.model_dim;
  // Construction order = the reference's RNG draws (matrices, then the gate);
  // own parameters come first in the state dict either way.
  if (own_matrices) {
    c_q = register_module("c_q", CastedLinear(D, D));
    c_k = register_module("c_k", CastedLinear(D, config.kv_dim()));
    c_v = register_module("c_v", CastedLinear(D, config.kv_dim()));
    proj = register_module("proj", CastedLinear(D, D, /*zero_init=*/true));
  }
  q_gain = register_parameter("q_gain", torch::full({num_heads_}, config.qk_gain_init));
  if (vr_mode_ == ValueResidualMode::kSigmoid)
    vrl_alpha = register_parameter("vrl_alpha", torch::zeros({1}));
  if (vr_mode_ == ValueResidualMode::kLambda)
    vr_lambda = register_parameter("vr_lambda", torch::full({2}, 0.5));
  if (config.sparse_attn_gate_enabled) {
    attn_gate_w = register_parameter("attn_gate_w", torch::zeros({num_heads_, config.gate_window}));
    if (config.sparse_attn_gate_init_std > 0) {
      torch::NoGradGuard no_grad;
      attn_gate_w.normal_(0.0, config.sparse_attn_gate_init_std);
    }
  }
  if (config.gated_attention) {
    attn_gate = register_module(
        "attn_gate", torch::nn::Linear(torch::nn::LinearOptions(D, num_heads_).bias(true)));
    torch::NoGradGuard no_grad;
    attn_gate->weight.zero_();
    attn_gate->bias.fill_(4.0);
  }
}

torch::Tensor CausalSelfAttentionImpl::mix_value_residual(const torch::Tensor& v,
                                                          torch::Tensor& v0) {
  if (!vr_mode_) return v;
  const bool first = !v0.defined();
  const auto raw = v;
  torch::Tensor mixed = v;
  if (vr_mode_ == ValueResidualMode::kLambda) {
    // #562: layer 0 scales by (l0 + l1) (identity at init); later layers
    // blend l0 * v0 + l1 * v.
    auto lam = vr_lambda.to(v.scalar_type());
    mixed = first ? v * (lam[0] + lam[1]) : lam[0] * v0 + lam[1] * v;
  } else if (!first) {
    mixed = v + torch::sigmoid(vrl_alpha.to(v.scalar_type())) * v0;  // #1406
  }
  if (first) v0 = raw;
  return mixed;
}

// SDPA's is_causal aligns a shorter query block to the first keys, so the
// tail block gets its own mask: query i sees keys j <= T - Tq + i. On the
// CPU the fused kernel does the same (kernels/attention.cpp), 1.5-1.8x
// faster than SDPA's CPU flash attention there.
torch::Tensor causal_attention(const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v) {
  const bool gqa = k.size(1) != q.size(1);
  const FastKernels* fast = fast_kernels_for(q);
  if (fast && fast->supports(k) && fast->supports(v)) return fast->causal_attention(q, k, v);
  const int64_t Tq = q.size(2), T = k.size(2);
  std::optional<torch::Tensor> mask;
  if (Tq < T) {
    mask = torch::ones({Tq, T}, torch::TensorOptions().dtype(torch::kBool).device(q.device()))
               .tril(T - Tq);
  }
  return at::scaled_dot_product_attention(q, k, v, mask, /*dropout_p=*/0.0,
                                          /*is_causal=*/Tq == T, /*scale=*/std::nullopt, gqa);
}

torch::Tensor CausalSelfAttentionImpl::sparse_gate(const torch::Tensor& u) const {
  const auto window = u.narrow(-1, 0, attn_gate_w.size(1));
  return torch::sigmoid(sparse_gate_scale_ *
                        torch::nn::functional::linear(window, attn_gate_w.to(u.scalar_type())));
}

torch::Tensor CausalSelfAttentionImpl::forward(const torch::Tensor& u, const LayerMatrices& w,
                                               const torch::Tensor& ve, torch::Tensor& v0,
                                               int64_t query_from,
                                               const std::vector<std::vector<int64_t>>* segments,
                                               const PassAdapters& lora) {
  const int64_t B = u.size(0), T = u.size(1), D = u.size(2);
  PGOLF_CHECK(query_from >= 0 && query_from < T, "attention: query_from {} outside [0, {})",
              query_from, T);
  PGOLF_CHECK(!segments || query_from == 0, "attention: document segments need query_from 0");
  if (w.observer) {
    for (const char* m : {"attn.c_q.weight", "attn.c_k.weight", "attn.c_v.weight"}) {
      (*w.observer)(w.prefix + m, u);
    }
  }
  // Queries, and everything after the attention, only where output is wanted.
  const auto uq = query_from > 0 ? u.slice(1, query_from) : u;
  const int64_t Tq = T - query_from;
  auto q = add_lora(casted_linear(uq, w.wq), lora.q, uq)
               .view({B, Tq, num_heads_, head_dim_})
               .transpose(1, 2);
  auto k = add_lora(casted_linear(u, w.wk), lora.k, u)
               .view({B, T, num_kv_heads_, head_dim_})
               .transpose(1, 2);
  auto v = add_lora(casted_linear(u, w.wv), lora.v, u);
  if (ve.defined()) v = v + ve;
  v = mix_value_residual(v.view({B, T, num_kv_heads_, head_dim_}).transpose(1, 2), v0);
  q = rms_norm(q);
  k = rms_norm(k);
  auto [cos, sin] = rotary_.tables(T, u.device(), q.scalar_type());
  k = apply_rotary(k, cos, sin);
  if (query_from > 0) {
    cos = cos.slice(-2, query_from);
    sin = sin.slice(-2, query_from);
  }
  q = apply_rotary(q, cos, sin);
  q = q * q_gain.to(q.scalar_type()).view({1, num_heads_, 1, 1});
  auto y = segments ? segmented_causal_attention(q, k, v, *segments) : causal_attention(q, k, v);
  if (use_xsa_) y = exclusive_self_attention(y, query_from > 0 ? v.slice(2, query_from) : v);
  if (attn_gate_w.defined()) y = y * sparse_gate(uq).transpose(1, 2).unsqueeze(-1);
  if (attn_gate) {
    const auto dtype = uq.scalar_type();
    auto gate = torch::sigmoid(torch::nn::functional::linear(  // (B, Tq, H)
        uq, attn_gate->weight.to(dtype), attn_gate->bias.to(dtype)));
    y = y * gate.transpose(1, 2).unsqueeze(-1);  // (B, H, Tq, 1)
  }
  y = y.transpose(1, 2).contiguous().view({B, Tq, D});
  if (w.observer) (*w.observer)(w.prefix + "attn.proj.weight", y);
  return add_lora(casted_linear(y, w.wo), lora.o, uq);
}

MLPImpl::MLPImpl(const ModelConfig& config, bool own_matrices) : leaky_slope_(config.leaky_slope) {
  if (own_matrices) {
    fc = register_module("fc", CastedLinear(config.model_dim, config.mlp_hidden()));
    proj = register_module("proj",
                           CastedLinear(config.mlp_hidden(), config.model_dim, /*zero_init=*/true));
  }
}

torch::Tensor MLPImpl::forward(const torch::Tensor& u, const LayerMatrices& w,
                               const BatchedLora* lora) {
  if (w.observer) (*w.observer)(w.prefix + "mlp.fc.weight", u);
  auto h = casted_linear(u, w.w_up);
  if (const FastKernels* fast = fast_kernels_for(h)) {
    h = fast->relu_square(h, leaky_slope_);
  } else {
    h = leaky_slope_ > 0 ? torch::leaky_relu(h, leaky_slope_) : torch::relu(h);
    h = h.square();
  }
  if (w.observer) (*w.observer)(w.prefix + "mlp.proj.weight", h);
  return add_lora(casted_linear(h, w.w_down), lora, u);
}

}  // namespace pgolf
