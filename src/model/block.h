// One logical layer's own state and computation (spec model-and-training
// §3.4-3.5):
//   x_in = resid_mix[0] * x + resid_mix[1] * x0
//   x1   = x_in + attn_scale * Attention(rmsnorm(x_in) * sigma)
//   out  = x1   + mlp_scale  * MLP(rmsnorm(x1) * sigma)
// with sigma = 1/sqrt(layer+1) under LN_SCALE. In the blocks and banks
// layouts a Block also owns its attention and MLP modules; in the cores
// layout those live in a shared LayerCore.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <string>
#include <utility>
#include <vector>

#include "config/config.h"
#include "model/attention.h"

namespace pgolf {

// Optional recorder of intermediate activations (name -> tensor), for tests
// that locate a mismatch against the reference's forward hooks.
struct ForwardTrace {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  void add(std::string name, const torch::Tensor& t) {
    tensors.emplace_back(std::move(name), t.detach());
  }
};

// The shared weights of the cores layout (#461/#456 BlockCore): attention and MLP.
class LayerCoreImpl : public torch::nn::Module {
 public:
  LayerCoreImpl(const ModelConfig& config, bool use_xsa);
  CausalSelfAttention attn{nullptr};
  MLP mlp{nullptr};
};
TORCH_MODULE(LayerCore);

// What one pass of a layer needs besides x and x0.
struct LayerInputs {
  CausalSelfAttentionImpl* attn;
  MLPImpl* mlp;
  const LayerMatrices* matrices;
  torch::Tensor ve;   // value embedding for this layer, or undefined
  torch::Tensor* v0;  // value-residual state shared by all layers
  // > 0: only positions [query_from, T) of the output are wanted (the last
  // layer of a scoring pass): keys and values are computed at every position,
  // everything else at those positions only.
  int64_t query_from = 0;
  // Document boundaries of each row (model/documents.h), or null.
  const std::vector<std::vector<int64_t>>* segments = nullptr;
  PassAdapters lora = {};  // test-time adapters of this pass (model/lora.h)
};

class BlockImpl : public torch::nn::Module {
 public:
  // owns_core: register attn/mlp here (blocks and banks layouts);
  // own_matrices: those modules hold their matrices (blocks layout).
  BlockImpl(const ModelConfig& config, int64_t layer, bool owns_core, bool own_matrices,
            bool use_xsa);
  // (B, T, D) -> (B, T - in.query_from, D).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& x0, const LayerInputs& in,
                        ForwardTrace* trace = nullptr, const std::string& name = "");

  // #1855's two-lane form (docs/entries/pr1855.md §3.7): the attention reads
  // lane0 (mixed with x0 by resid_mix), the MLP reads lane1; with
  // a = attn_scale * Attn, m = mlp_scale * MLP, resid (2) and post (2, 2):
  //   lane0' = resid[0] lane0 + post[0][0] a + post[1][0] m
  //   lane1' = resid[1] lane1 + post[0][1] a + post[1][1] m
  std::pair<torch::Tensor, torch::Tensor> forward_parallel(
      const torch::Tensor& lane0, const torch::Tensor& lane1, const torch::Tensor& x0,
      const LayerInputs& in, const torch::Tensor& resid, const torch::Tensor& post);

  double ln_scale_factor() const { return ln_scale_; }

  torch::Tensor attn_scale, mlp_scale, resid_mix;  // (D), (D), (2, D)
  CausalSelfAttention attn{nullptr};
  MLP mlp{nullptr};

 private:
  torch::Tensor normed_input(const torch::Tensor& x) const;  // rmsnorm(x) * sigma
  double ln_scale_;
};
TORCH_MODULE(Block);

}  // namespace pgolf
