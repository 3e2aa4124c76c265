#include "model/weights.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>
#include <set>

#include "common/error.h"
#include "common/format.h"
#include "quant/param_groups.h"

namespace pgolf {

StateDict state_dict(GPT& model) {
  StateDict out;
  for (const auto& item : model->named_parameters(/*recurse=*/true)) {
    out.emplace_back(item.key(), item.value().detach());
  }
  return out;
}

void load_state_dict(GPT& model, const StateDict& weights) {
  auto params = model->named_parameters(/*recurse=*/true);
  std::set<std::string> given;
  for (const auto& [name, _] : weights) {
    PGOLF_CHECK(given.insert(name).second, "weights: duplicate tensor '{}'", name);
  }
  std::vector<std::string> missing, unexpected;
  for (const auto& item : params) {
    if (!given.count(item.key())) missing.push_back(item.key());
  }
  for (const auto& [name, _] : weights) {
    if (!params.contains(name)) unexpected.push_back(name);
  }
  if (!missing.empty() || !unexpected.empty()) {
    fail("weights do not match the model: missing [{}], unexpected [{}]", fmt::join(missing, ", "),
         fmt::join(unexpected, ", "));
  }
  torch::NoGradGuard no_grad;
  for (const auto& [name, tensor] : weights) {
    auto& param = params[name];
    PGOLF_CHECK(param.sizes() == tensor.sizes(), "weights: '{}' has shape {}, the model expects {}",
                name, shape_string(tensor), shape_string(param));
    PGOLF_CHECK(tensor.is_floating_point(), "weights: '{}' is not a floating-point tensor", name);
    param.copy_(tensor.to(param.device(), param.scalar_type()));
  }
}

int64_t parameter_count(GPT& model) {
  int64_t n = 0;
  for (const auto& p : model->parameters()) n += p.numel();
  return n;
}

std::string parameter_table(GPT& model) {
  const bool banked = model->config().weight_layout == WeightLayout::kBanks;
  std::string out;
  for (const auto& item : model->named_parameters(/*recurse=*/true)) {
    out += fmt::format("{:<36} {:<16} {:>10} {:<8} reference:{}\n", item.key(),
                       shape_string(item.value()), item.value().numel(),
                       c10::toString(item.value().scalar_type()),
                       c10::toString(reference_dtype(item.key(), banked)));
  }
  out += fmt::format("model_params:{}\n", parameter_count(model));
  return out;
}

void load_weights(GPT& model, StateDict weights) {
  const ModelConfig& config = model->config();
  if (config.weight_layout == WeightLayout::kBanks && !has_tensor(weights, "qo_bank")) {
    weights = rebank_state_dict(weights, config.num_layers);
  }
  load_state_dict(model, weights);
}

}  // namespace pgolf
