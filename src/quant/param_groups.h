// Which optimizer owns which parameter, by the entries' rules (spec
// model-and-training §4.3):
//   tok_emb, bigram.embed, ve_shared.embed tables -> Adam "tok" (TIED_EMBED_LR)
//   lm_head.weight                                -> Adam (HEAD_LR), untied only
//   matrices -> Muon (MATRIX_LR): in the banks layout (#1406) exactly the four
//     banks; otherwise every 2-D non-control tensor of the blocks/cores plus
//     bigram.proj and ve_shared.proj (#461/#456/#562)
//   everything else -> Adam "scalar" (SCALAR_LR)
// Control tensors are named by substring (CONTROL_TENSOR_NAME_PATTERNS); they
// also stay fp32 in training and in the int8 export. The list is the union of
// the entries' lists except `attn_gate`, whose weight #562 trains with Muon
// (#1406 has it in its list, but there the banks rule sends it to Adam anyway).
#pragma once

#include <torch/types.h>

#include <array>
#include <string_view>

namespace pgolf {

inline constexpr std::array<std::string_view, 15> kControlTensorPatterns = {
    "attn_scale",  "attn_scales",  "mlp_scale",       "mlp_scales",      "resid_mix",
    "resid_mixes", "q_gain",       "skip_weight",     "skip_weights",    "smear",
    "dtg_gate",    "bigram.scale", "ve_layer_scales", "ve_shared.scale", "vr_lambda"};

bool is_control_tensor(std::string_view name);

enum class ParamGroup { kTokenEmbedding, kHead, kMatrix, kScalar };

// `banked`: the model stores its block matrices in banks (#1406's layout).
ParamGroup param_group(std::string_view name, const torch::Tensor& param, bool banked = false);

// The dtype the reference keeps a parameter in during training (spec §8):
// nn.Embedding tables bf16, a plain nn.Linear that is 2-D and not a control
// tensor bf16 (only #562's attn_gate.weight; #1406 lists attn_gate as
// control), everything else fp32. pgolf keeps fp32 masters throughout.
torch::ScalarType reference_dtype(std::string_view name, bool banked = false);

}  // namespace pgolf
