// The baseline GPT of the challenge (spec model-and-training §2-3, train_gpt.py):
//
//   tok_emb -> rmsnorm -> x0
//   U-Net over the blocks: the first half pushes outputs, the second half adds
//   skip_weights[i] * pop() before each block
//   block: x = resid_mix[0]*x + resid_mix[1]*x0
//          x += attn_scale * Attention(rmsnorm(x))     GQA, QK-norm, RoPE, q_gain
//          x += mlp_scale  * MLP(rmsnorm(x))           relu(fc x)^2 -> proj
//   rmsnorm -> tied head (x @ tok_emb^T) -> softcap 30*tanh(z/30) -> CE in fp32
//
// Parameters are registered in the reference's state_dict order and under its
// names (blocks.0.attn.c_q.weight, ...), so named_parameters() *is* the
// exchange order for safetensors files and artifacts.
//
// Precision: master weights are fp32. `compute_dtype` plays the role of the
// reference's bf16 autocast: activations and matmul operands are cast to it,
// RMSNorm computes in fp32 internally, and the logits are up-cast to fp32
// before the cross-entropy.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/pimpl.h>

#include <string>
#include <utility>
#include <vector>

#include "config/config.h"

namespace pgolf {

// Optional recorder of intermediate activations (name -> tensor), for tests
// that locate a mismatch against the reference's forward hooks.
struct ForwardTrace {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  void add(std::string name, const torch::Tensor& t) {
    tensors.emplace_back(std::move(name), t.detach());
  }
};

// Linear layer without bias whose fp32 weight is cast to the input's dtype at
// use (the reference's CastedLinear).
class CastedLinearImpl : public torch::nn::Module {
 public:
  CastedLinearImpl(int64_t in_features, int64_t out_features);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;
};
TORCH_MODULE(CastedLinear);

// cos/sin tables of rotary embeddings, cached per sequence length and dtype.
class Rotary {
 public:
  Rotary(int64_t head_dim, double base);
  // Both (1, 1, T, head_dim/2) in `dtype`.
  std::pair<torch::Tensor, torch::Tensor> tables(int64_t seq_len, torch::Device device,
                                                 torch::ScalarType dtype);

 private:
  torch::Tensor inv_freq_;  // fp32, (head_dim/2)
  int64_t cached_len_ = 0;
  torch::ScalarType cached_dtype_ = torch::kFloat;
  torch::Device cached_device_ = torch::kCPU;
  torch::Tensor cos_, sin_;
};

// Rotate-half RoPE with the reference's sign convention:
//   (x1, x2) -> (x1 cos + x2 sin, -x1 sin + x2 cos).
torch::Tensor apply_rotary(const torch::Tensor& x, const torch::Tensor& cos,
                           const torch::Tensor& sin);

class CausalSelfAttentionImpl : public torch::nn::Module {
 public:
  explicit CausalSelfAttentionImpl(const ModelConfig& config);
  torch::Tensor forward(const torch::Tensor& x);  // (B, T, D) -> (B, T, D)

  torch::Tensor q_gain;  // (H)
  CastedLinear c_q{nullptr}, c_k{nullptr}, c_v{nullptr}, proj{nullptr};

 private:
  int64_t num_heads_, num_kv_heads_, head_dim_;
  Rotary rotary_;
};
TORCH_MODULE(CausalSelfAttention);

class MLPImpl : public torch::nn::Module {
 public:
  explicit MLPImpl(const ModelConfig& config);
  torch::Tensor forward(const torch::Tensor& x);  // relu(fc x)^2 -> proj
  CastedLinear fc{nullptr}, proj{nullptr};
};
TORCH_MODULE(MLP);

class BlockImpl : public torch::nn::Module {
 public:
  explicit BlockImpl(const ModelConfig& config);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& x0,
                        ForwardTrace* trace = nullptr, const std::string& name = "");

  torch::Tensor attn_scale, mlp_scale, resid_mix;  // (D), (D), (2, D)
  CausalSelfAttention attn{nullptr};
  MLP mlp{nullptr};
};
TORCH_MODULE(Block);

class GPTImpl : public torch::nn::Module {
 public:
  // Builds and initialises the model as the reference does, drawing from the
  // default generator (seed it with torch::manual_seed first).
  explicit GPTImpl(const ModelConfig& config);

  // Final-normed hidden states, (B, T, D) in the compute dtype.
  torch::Tensor hidden(const torch::Tensor& input_ids, ForwardTrace* trace = nullptr);
  // Soft-capped logits in fp32, (B, T, V).
  torch::Tensor logits(const torch::Tensor& input_ids, ForwardTrace* trace = nullptr);
  // Mean cross-entropy over all positions (the reference's forward()).
  torch::Tensor loss(const torch::Tensor& input_ids, const torch::Tensor& target_ids);
  // Cross-entropy of every position, (B, T) fp32.
  torch::Tensor token_losses(const torch::Tensor& input_ids, const torch::Tensor& target_ids);

  void set_compute_dtype(torch::ScalarType dtype) { compute_dtype_ = dtype; }
  torch::ScalarType compute_dtype() const { return compute_dtype_; }
  const ModelConfig& config() const { return config_; }

  torch::Tensor skip_weights;  // (num_skip, D)
  torch::nn::Embedding tok_emb{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  CastedLinear lm_head{nullptr};  // only when tie_embeddings = false

 private:
  torch::Tensor softcapped_logits(const torch::Tensor& hidden);
  ModelConfig config_;
  torch::ScalarType compute_dtype_ = torch::kFloat;
};
TORCH_MODULE(GPT);

// Weight-less RMSNorm over the last dim with eps = FLT_EPSILON (PyTorch's
// default when eps is None); computes in fp32 for low-precision inputs.
torch::Tensor rms_norm(const torch::Tensor& x);

}  // namespace pgolf
