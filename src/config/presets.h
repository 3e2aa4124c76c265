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

// `entry`'s techniques and recipe at `scale`'s size: its width, depth and
// heads, sequence length, batch, schedule (steps, wall clock, warm-down,
// warm-ups), Newton-Schulz precision, logging and validation batch. The
// `-cpu` presets are entries at the `cpu` preset's scale; tests shrink
// entries the same way.
Config at_scale_of(Config entry, const Config& scale);

}  // namespace pgolf
