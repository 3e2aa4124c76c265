#include "model/gpt.h"

#include <torch/nn/functional/loss.h>
#include <torch/nn/init.h>

#include <cmath>

namespace pgolf {

torch::Tensor rms_norm(const torch::Tensor& x) {
  return at::rms_norm(x, {x.size(-1)}, /*weight=*/{}, /*eps=*/std::nullopt);
}

// ---------------------------------------------------------------------------
// CastedLinear

CastedLinearImpl::CastedLinearImpl(int64_t in_features, int64_t out_features) {
  weight = register_parameter("weight", torch::empty({out_features, in_features}));
  // nn.Linear's default init, kaiming_uniform(a=sqrt(5)), with the same
  // floating-point steps as PyTorch so a seeded generator gives the same draws.
  const double gain = std::sqrt(2.0 / (1.0 + 5.0));
  const double bound = std::sqrt(3.0) * (gain / std::sqrt(static_cast<double>(in_features)));
  torch::NoGradGuard no_grad;
  weight.uniform_(-bound, bound);
}

torch::Tensor CastedLinearImpl::forward(const torch::Tensor& x) {
  return torch::nn::functional::linear(x, weight.to(x.scalar_type()));
}

// ---------------------------------------------------------------------------
// Rotary

Rotary::Rotary(int64_t head_dim, double base) {
  auto exponents = torch::arange(0, head_dim, 2, torch::kFloat) / static_cast<double>(head_dim);
  inv_freq_ = 1.0 / torch::pow(torch::tensor(base, torch::kFloat), exponents);
}

std::pair<torch::Tensor, torch::Tensor> Rotary::tables(int64_t seq_len, torch::Device device,
                                                       torch::ScalarType dtype) {
  if (!cos_.defined() || cached_len_ != seq_len || cached_dtype_ != dtype ||
      cached_device_ != device) {
    // The reference casts the whole module to bf16, inv_freq buffer included,
    // so under bf16 the angle table is built from bf16 positions and
    // frequencies. Reproduce that; in fp32 everything is fp32.
    // The cache outlives the call: build it as normal tensors even when the
    // first call comes from evaluation under InferenceMode, or training
    // afterwards could not save it for backward.
    c10::InferenceMode normal_tensors(/*enabled=*/false);
    torch::NoGradGuard no_grad;
    const auto table_dtype = dtype == torch::kBFloat16 ? torch::kBFloat16 : torch::kFloat;
    auto inv_freq = inv_freq_.to(device, table_dtype);
    auto t = torch::arange(seq_len, torch::TensorOptions().device(device).dtype(table_dtype));
    auto freqs = torch::outer(t, inv_freq);
    cos_ = freqs.cos().unsqueeze(0).unsqueeze(0).to(dtype);
    sin_ = freqs.sin().unsqueeze(0).unsqueeze(0).to(dtype);
    cached_len_ = seq_len;
    cached_dtype_ = dtype;
    cached_device_ = device;
  }
  return {cos_, sin_};
}

torch::Tensor apply_rotary(const torch::Tensor& x, const torch::Tensor& cos,
                           const torch::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  auto x1 = x.narrow(-1, 0, half);
  auto x2 = x.narrow(-1, half, half);
  return torch::cat({x1 * cos + x2 * sin, x1 * (-sin) + x2 * cos}, -1);
}

// ---------------------------------------------------------------------------
// Attention, MLP, Block

CausalSelfAttentionImpl::CausalSelfAttentionImpl(const ModelConfig& config)
    : num_heads_(config.num_heads),
      num_kv_heads_(config.num_kv_heads),
      head_dim_(config.head_dim()),
      rotary_(config.head_dim(), config.rope_base) {
  // Registration order = the reference's state_dict order: own parameters
  // first, then submodules in construction order.
  q_gain = register_parameter("q_gain",
                              torch::full({config.num_heads}, config.qk_gain_init, torch::kFloat));
  c_q = register_module("c_q", CastedLinear(config.model_dim, config.model_dim));
  c_k = register_module("c_k", CastedLinear(config.model_dim, config.kv_dim()));
  c_v = register_module("c_v", CastedLinear(config.model_dim, config.kv_dim()));
  proj = register_module("proj", CastedLinear(config.model_dim, config.model_dim));
}

torch::Tensor CausalSelfAttentionImpl::forward(const torch::Tensor& x) {
  const int64_t B = x.size(0), T = x.size(1), D = x.size(2);
  auto q = c_q(x).view({B, T, num_heads_, head_dim_}).transpose(1, 2);     // (B, H, T, Dh)
  auto k = c_k(x).view({B, T, num_kv_heads_, head_dim_}).transpose(1, 2);  // (B, Hkv, T, Dh)
  auto v = c_v(x).view({B, T, num_kv_heads_, head_dim_}).transpose(1, 2);  // (B, Hkv, T, Dh)
  q = rms_norm(q);
  k = rms_norm(k);
  auto [cos, sin] = rotary_.tables(T, x.device(), q.scalar_type());
  q = apply_rotary(q, cos, sin);
  k = apply_rotary(k, cos, sin);
  q = q * q_gain.to(q.scalar_type()).view({1, num_heads_, 1, 1});
  // GQA: query head h reads KV head h / (H / Hkv) (repeat_interleave order).
  auto y = at::scaled_dot_product_attention(q, k, v, /*attn_mask=*/{}, /*dropout_p=*/0.0,
                                            /*is_causal=*/true, /*scale=*/std::nullopt,
                                            /*enable_gqa=*/num_kv_heads_ != num_heads_);
  y = y.transpose(1, 2).contiguous().view({B, T, D});
  return proj(y);
}

MLPImpl::MLPImpl(const ModelConfig& config) {
  fc = register_module("fc", CastedLinear(config.model_dim, config.mlp_hidden()));
  proj = register_module("proj", CastedLinear(config.mlp_hidden(), config.model_dim));
}

torch::Tensor MLPImpl::forward(const torch::Tensor& x) { return proj(torch::relu(fc(x)).square()); }

BlockImpl::BlockImpl(const ModelConfig& config) {
  const int64_t D = config.model_dim;
  attn_scale = register_parameter("attn_scale", torch::ones({D}, torch::kFloat));
  mlp_scale = register_parameter("mlp_scale", torch::ones({D}, torch::kFloat));
  resid_mix = register_parameter("resid_mix", torch::stack({torch::ones({D}), torch::zeros({D})}));
  attn = register_module("attn", CausalSelfAttention(config));
  mlp = register_module("mlp", MLP(config));
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x_in, const torch::Tensor& x0,
                                 ForwardTrace* trace, const std::string& name) {
  const auto dtype = x_in.scalar_type();
  auto mix = resid_mix.to(dtype);
  auto x = mix[0] * x_in + mix[1] * x0;
  auto attn_out = attn(rms_norm(x));
  x = x + attn_scale.to(dtype) * attn_out;
  auto mlp_out = mlp(rms_norm(x));
  x = x + mlp_scale.to(dtype) * mlp_out;
  if (trace) {
    trace->add(name + ".attn_out", attn_out);
    trace->add(name + ".mlp_out", mlp_out);
  }
  return x;
}

// ---------------------------------------------------------------------------
// GPT

GPTImpl::GPTImpl(const ModelConfig& config) : config_(config) {
  config.validate();
  const int64_t D = config.model_dim;
  // Same construction order as the reference, so that a seeded CPU generator
  // draws the same initial weights: embedding, then block by block.
  const int64_t num_skip = std::min(config.num_encoder_layers(), config.num_decoder_layers());
  skip_weights = register_parameter("skip_weights", torch::ones({num_skip, D}, torch::kFloat));
  tok_emb = register_module("tok_emb", torch::nn::Embedding(config.vocab_size, D));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_layers; ++i) blocks->push_back(Block(config));
  if (!config.tie_embeddings)
    lm_head = register_module("lm_head", CastedLinear(D, config.vocab_size));

  // _init_weights: tied embedding ~ N(0, std); zero-init output projections.
  torch::NoGradGuard no_grad;
  if (config.tie_embeddings) tok_emb->weight.normal_(0.0, config.tied_embed_init_std);
  for (const auto& module : *blocks) {
    auto block = module->as<BlockImpl>();
    block->attn->proj->weight.zero_();
    block->mlp->proj->weight.zero_();
  }
  if (lm_head) lm_head->weight.zero_();
}

torch::Tensor GPTImpl::hidden(const torch::Tensor& input_ids, ForwardTrace* trace) {
  auto x = rms_norm(tok_emb(input_ids).to(compute_dtype_));
  const auto x0 = x;
  if (trace) trace->add("x0", x0);
  const int64_t n_enc = config_.num_encoder_layers();
  const int64_t n_dec = config_.num_decoder_layers();
  std::vector<torch::Tensor> skips;
  auto run_block = [&](int64_t i) {
    const std::string name = "blocks." + std::to_string(i);
    if (trace) trace->add(name + ".in", x);
    x = blocks[i]->as<BlockImpl>()->forward(x, x0, trace, name);
    if (trace) trace->add(name + ".out", x);
  };
  for (int64_t i = 0; i < n_enc; ++i) {
    run_block(i);
    skips.push_back(x);
  }
  for (int64_t i = 0; i < n_dec; ++i) {
    if (!skips.empty()) {
      x = x + skip_weights[i].to(x.scalar_type()) * skips.back();
      skips.pop_back();
    }
    run_block(n_enc + i);
  }
  x = rms_norm(x);
  if (trace) trace->add("final_norm_out", x);
  return x;
}

torch::Tensor GPTImpl::softcapped_logits(const torch::Tensor& h) {
  const auto& head = config_.tie_embeddings ? tok_emb->weight : lm_head->weight;
  auto z = torch::nn::functional::linear(h, head.to(h.scalar_type()));
  const double cap = config_.logit_softcap;
  return (cap * torch::tanh(z / cap)).to(torch::kFloat);
}

torch::Tensor GPTImpl::logits(const torch::Tensor& input_ids, ForwardTrace* trace) {
  return softcapped_logits(hidden(input_ids, trace));
}

torch::Tensor GPTImpl::loss(const torch::Tensor& input_ids, const torch::Tensor& target_ids) {
  auto z = logits(input_ids);
  return torch::nn::functional::cross_entropy(z.view({-1, z.size(-1)}), target_ids.reshape({-1}));
}

torch::Tensor GPTImpl::token_losses(const torch::Tensor& input_ids,
                                    const torch::Tensor& target_ids) {
  auto z = logits(input_ids);
  namespace F = torch::nn::functional;
  return F::cross_entropy(z.view({-1, z.size(-1)}), target_ids.reshape({-1}),
                          F::CrossEntropyFuncOptions().reduction(torch::kNone))
      .view(target_ids.sizes());
}

}  // namespace pgolf
