#include "io/state_dict.h"

#include "common/error.h"

namespace pgolf {

const torch::Tensor& find_tensor(const StateDict& dict, const std::string& name) {
  for (const auto& [key, tensor] : dict) {
    if (key == name) return tensor;
  }
  fail("tensor '{}' not found", name);
}

bool has_tensor(const StateDict& dict, const std::string& name) {
  for (const auto& entry : dict) {
    if (entry.first == name) return true;
  }
  return false;
}

}  // namespace pgolf
