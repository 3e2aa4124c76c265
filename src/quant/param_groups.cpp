#include "quant/param_groups.h"

namespace pgolf {

bool is_control_tensor(std::string_view name) {
  for (auto pattern : kControlTensorPatterns) {
    if (name.find(pattern) != std::string_view::npos) return true;
  }
  return false;
}

namespace {

bool is_embedding_table(std::string_view name) {
  return name == "tok_emb.weight" || name == "bigram.embed.weight" ||
         name == "ve_shared.embed.weight";
}

}  // namespace

ParamGroup param_group(std::string_view name, const torch::Tensor& param, bool banked) {
  if (is_embedding_table(name)) return ParamGroup::kTokenEmbedding;
  if (name == "lm_head.weight") return ParamGroup::kHead;
  if (banked) return name.ends_with("_bank") ? ParamGroup::kMatrix : ParamGroup::kScalar;
  const bool layer_matrix = (name.starts_with("blocks.") || name.starts_with("cores.")) &&
                            param.dim() == 2 && !is_control_tensor(name);
  if (layer_matrix || name == "bigram.proj.weight" || name == "ve_shared.proj.weight") {
    return ParamGroup::kMatrix;
  }
  return ParamGroup::kScalar;
}

torch::ScalarType reference_dtype(std::string_view name, bool banked) {
  if (is_embedding_table(name)) return torch::kBFloat16;
  if (!banked && name.ends_with("attn_gate.weight")) return torch::kBFloat16;
  return torch::kFloat;
}

}  // namespace pgolf
