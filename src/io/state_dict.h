// StateDict: named tensors in a fixed order. Order matters (the reference's
// state_dict order is the exchange order of safetensors files and artifacts),
// so this is a vector of pairs rather than a map.
#pragma once

#include <torch/types.h>

#include <string>
#include <utility>
#include <vector>

namespace pgolf {

using StateDict = std::vector<std::pair<std::string, torch::Tensor>>;

// Returns the tensor named `name`, or throws pgolf::Error naming what is missing.
const torch::Tensor& find_tensor(const StateDict& dict, const std::string& name);
// Whether `dict` holds a tensor named `name`.
bool has_tensor(const StateDict& dict, const std::string& name);

}  // namespace pgolf
