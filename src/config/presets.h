// Named presets: complete configurations for each reference entry, plus `cpu`
// (the baseline's recipe shrunk so that 10 minutes on 2 cores still learns).
#pragma once

#include <string>
#include <vector>

#include "config/config.h"

namespace pgolf {

// Throws pgolf::Error listing the known names if `name` is unknown.
Config preset(const std::string& name);
std::vector<std::string> preset_names();

}  // namespace pgolf
