#include "model/param_groups.h"

namespace pgolf {

bool is_control_tensor(std::string_view name) {
  for (auto pattern : kControlTensorPatterns) {
    if (name.find(pattern) != std::string_view::npos) return true;
  }
  return false;
}

ParamGroup param_group(std::string_view name, const torch::Tensor& param) {
  if (name == "tok_emb.weight") return ParamGroup::kTokenEmbedding;
  if (name == "lm_head.weight") return ParamGroup::kHead;
  if (name.starts_with("blocks.") && param.dim() == 2 && !is_control_tensor(name)) {
    return ParamGroup::kMatrix;
  }
  return ParamGroup::kScalar;
}

}  // namespace pgolf
