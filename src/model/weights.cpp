#include "model/weights.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>
#include <set>

#include "common/error.h"
#include "model/param_groups.h"

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

namespace {

struct BankSlot {
  const char* bank;
  const char* alias;  // blocks.{i}.<alias>
  bool second_half;   // [L + i] rather than [i]
};

constexpr BankSlot kBankSlots[] = {
    {"qo_bank", "attn.c_q.weight", false},   {"qo_bank", "attn.proj.weight", true},
    {"kv_bank", "attn.c_k.weight", false},   {"kv_bank", "attn.c_v.weight", true},
    {"mlp_up_bank", "mlp.fc.weight", false}, {"mlp_down_bank", "mlp.proj.weight", false}};

std::string alias_name(int64_t layer, const char* alias) {
  return "blocks." + std::to_string(layer) + "." + alias;
}

}  // namespace

StateDict unbank_state_dict(const StateDict& weights, int64_t num_layers) {
  StateDict out;
  for (const auto& [name, tensor] : weights) {
    const bool is_bank = std::any_of(std::begin(kBankSlots), std::end(kBankSlots),
                                     [&](const BankSlot& s) { return name == s.bank; });
    if (!is_bank) {
      out.emplace_back(name, tensor);
      continue;
    }
    const bool halves = name == "qo_bank" || name == "kv_bank";
    PGOLF_CHECK(tensor.dim() == 3 && tensor.size(0) == (halves ? 2 : 1) * num_layers,
                "'{}' has shape {}, which is not a bank for {} layers", name, shape_string(tensor),
                num_layers);
    // Layer by layer, as the script's own unbanking (c_q_0, proj_0, c_q_1, ...).
    for (int64_t i = 0; i < num_layers; ++i) {
      for (const auto& slot : kBankSlots) {
        if (name != slot.bank) continue;
        out.emplace_back(alias_name(i, slot.alias), tensor[slot.second_half ? num_layers + i : i]);
      }
    }
  }
  return out;
}

StateDict rebank_state_dict(const StateDict& weights, int64_t num_layers) {
  std::map<std::string, torch::Tensor> aliases;
  for (const auto& [name, tensor] : weights) aliases[name] = tensor;
  auto take = [&](int64_t layer, const char* alias) {
    auto it = aliases.find(alias_name(layer, alias));
    PGOLF_CHECK(it != aliases.end(), "cannot rebank: '{}' is missing", alias_name(layer, alias));
    return it->second;
  };
  StateDict out;
  std::set<std::string> done;
  for (const auto& [name, tensor] : weights) {
    const BankSlot* slot = nullptr;
    for (const auto& s : kBankSlots) {
      if (name.starts_with("blocks.") && name.ends_with(std::string(".") + s.alias)) slot = &s;
    }
    if (!slot) {
      out.emplace_back(name, tensor);
      continue;
    }
    if (!done.insert(slot->bank).second) continue;
    // The bank takes the place of its first matrix; both halves of qo/kv.
    std::vector<torch::Tensor> parts;
    for (const auto& s : kBankSlots) {
      if (std::string(s.bank) != slot->bank) continue;
      if (s.second_half) continue;
      for (int64_t i = 0; i < num_layers; ++i) parts.push_back(take(i, s.alias));
    }
    for (const auto& s : kBankSlots) {
      if (std::string(s.bank) != slot->bank || !s.second_half) continue;
      for (int64_t i = 0; i < num_layers; ++i) parts.push_back(take(i, s.alias));
    }
    out.emplace_back(slot->bank, torch::stack(parts));
  }
  return out;
}

std::string parameter_table(GPT& model) {
  const bool banked = model->config().weight_layout == "banks";
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
  if (config.weight_layout == "banks" && !has_tensor(weights, "qo_bank")) {
    weights = rebank_state_dict(weights, config.num_layers);
  }
  load_state_dict(model, weights);
}

}  // namespace pgolf
