#include "model/weights.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <set>

#include "common/error.h"

namespace pgolf {
namespace {

std::string shape_string(const torch::Tensor& t) {
  std::string out = "[";
  for (int64_t i = 0; i < t.dim(); ++i) out += (i ? ", " : "") + std::to_string(t.size(i));
  return out + "]";
}

}  // namespace

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
  std::string out;
  for (const auto& item : model->named_parameters(/*recurse=*/true)) {
    out += fmt::format("{:<36} {:<14} {:>10} {}\n", item.key(), shape_string(item.value()),
                       item.value().numel(), c10::toString(item.value().scalar_type()));
  }
  out += fmt::format("model_params:{}\n", parameter_count(model));
  return out;
}

}  // namespace pgolf
