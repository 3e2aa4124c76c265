// A GPT's weights as a StateDict under the reference's names, loading one back
// (strict names and shapes, dtype-tolerant), and the parameter table.
#pragma once

#include <string>

#include "io/banks.h"
#include "io/state_dict.h"
#include "model/gpt.h"

namespace pgolf {

// Every parameter, in the reference's state_dict order, detached (shares storage).
StateDict state_dict(GPT& model);

// Copies `weights` into the model. Names must match exactly (missing and
// unexpected keys are listed in the error), shapes must match; any floating
// dtype is accepted and converted (e.g. bf16 tables stored as F32).
void load_state_dict(GPT& model, const StateDict& weights);

int64_t parameter_count(GPT& model);

// load_state_dict, accepting per-layer names for a banked model (rebanked
// first): artifacts and #1406's own quantiser store the unbanked form.
void load_weights(GPT& model, StateDict weights);

// One line per parameter: name, shape, numel, dtype; then "model_params:N".
std::string parameter_table(GPT& model);

}  // namespace pgolf
