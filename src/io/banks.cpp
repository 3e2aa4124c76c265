#include "io/banks.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/format.h"

namespace pgolf {
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

}  // namespace pgolf
