#include "model/block.h"

#include <cmath>

#include "model/layers.h"

namespace pgolf {

LayerCoreImpl::LayerCoreImpl(const ModelConfig& config, bool use_xsa) {
  attn = register_module("attn", CausalSelfAttention(config, /*own_matrices=*/true, use_xsa));
  mlp = register_module("mlp", MLP(config, /*own_matrices=*/true));
}

BlockImpl::BlockImpl(const ModelConfig& config, int64_t layer, bool owns_core, bool own_matrices,
                     bool use_xsa)
    : ln_scale_(config.ln_scale ? 1.0 / std::sqrt(static_cast<double>(layer + 1)) : 1.0) {
  const int64_t D = config.model_dim;
  // The reference builds attn and mlp first (their RNG draws), then these.
  if (owns_core) {
    attn = register_module("attn", CausalSelfAttention(config, own_matrices, use_xsa));
    mlp = register_module("mlp", MLP(config, own_matrices));
  }
  attn_scale = register_parameter("attn_scale", torch::ones({D}));
  mlp_scale = register_parameter("mlp_scale", torch::ones({D}));
  resid_mix = register_parameter("resid_mix", torch::stack({torch::ones({D}), torch::zeros({D})}));
}

torch::Tensor BlockImpl::normed_input(const torch::Tensor& x) const {
  return ln_scale_ == 1.0 ? rms_norm(x) : rms_norm(x) * ln_scale_;
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x_in, const torch::Tensor& x0,
                                 const LayerInputs& in, ForwardTrace* trace,
                                 const std::string& name) {
  const auto dtype = x_in.scalar_type();
  auto mix = resid_mix.to(dtype);
  auto x = blend(mix[0], x_in, mix[1], x0);
  auto attn_out = in.attn->forward(normed_input(x), *in.matrices, in.ve, *in.v0, in.query_from,
                                   in.segments, in.lora);
  if (in.query_from > 0) x = x.slice(1, in.query_from);
  x = add_scaled(x, attn_scale.to(dtype), attn_out);
  auto mlp_out = in.mlp->forward(normed_input(x), *in.matrices, in.lora.mlp);
  x = add_scaled(x, mlp_scale.to(dtype), mlp_out);
  if (trace) {
    trace->add(name + ".attn_out", attn_out);
    trace->add(name + ".mlp_out", mlp_out);
  }
  return x;
}

std::pair<torch::Tensor, torch::Tensor> BlockImpl::forward_parallel(
    const torch::Tensor& lane0, const torch::Tensor& lane1, const torch::Tensor& x0,
    const LayerInputs& in, const torch::Tensor& resid, const torch::Tensor& post) {
  const auto dtype = lane0.scalar_type();
  const auto mix = resid_mix.to(dtype);
  const auto attn_in = blend(mix[0], lane0, mix[1], x0);
  auto a =
      in.attn->forward(normed_input(attn_in), *in.matrices, in.ve, *in.v0, 0, in.segments, in.lora);
  a = attn_scale.to(dtype) * a;
  auto m = mlp_scale.to(dtype) * in.mlp->forward(normed_input(lane1), *in.matrices, in.lora.mlp);
  const auto r = resid.to(dtype), p = post.to(dtype);
  return {r[0] * lane0 + p[0][0] * a + p[1][0] * m, r[1] * lane1 + p[0][1] * a + p[1][1] * m};
}

}  // namespace pgolf
