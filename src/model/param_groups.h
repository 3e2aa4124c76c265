// Which optimizer owns which parameter, by the reference's rules:
//   tok_emb.weight          -> Adam (TIED_EMBED_LR, or EMBED_LR when untied)
//   lm_head.weight          -> Adam (HEAD_LR), untied only
//   block matrices          -> Muon (MATRIX_LR): 2-D and not a control tensor
//   everything else         -> Adam (SCALAR_LR): vectors, control tensors, skip_weights
// Control tensors are named by substring (CONTROL_TENSOR_NAME_PATTERNS); they
// also stay fp32 in training and in the int8 export.
#pragma once

#include <torch/types.h>

#include <array>
#include <string_view>

namespace pgolf {

inline constexpr std::array<std::string_view, 9> kControlTensorPatterns = {
    "attn_scale",  "attn_scales", "mlp_scale",   "mlp_scales",  "resid_mix",
    "resid_mixes", "q_gain",      "skip_weight", "skip_weights"};

bool is_control_tensor(std::string_view name);

enum class ParamGroup { kTokenEmbedding, kHead, kMatrix, kScalar };

ParamGroup param_group(std::string_view name, const torch::Tensor& param);

}  // namespace pgolf
