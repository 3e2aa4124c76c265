// A GPT's weights as a StateDict under the reference's names, loading one back
// (strict names and shapes, dtype-tolerant), and the parameter table.
#pragma once

#include <string>

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

// #1406's banks <-> per-layer matrices under the unbanked names the script
// itself uses for quantisation (spec §8.1): qo_bank[i] = blocks.{i}.attn.c_q.weight,
// qo_bank[L+i] = blocks.{i}.attn.proj.weight, kv_bank[i] = ...c_k, kv_bank[L+i]
// = ...c_v, mlp_up_bank[i] = blocks.{i}.mlp.fc.weight, mlp_down_bank[i] =
// blocks.{i}.mlp.proj.weight. Other entries pass through, order kept (the
// unbanked matrices take the banks' place). A dict without banks is returned
// unchanged by unbank; rebank needs every per-layer matrix.
StateDict unbank_state_dict(const StateDict& weights, int64_t num_layers);
StateDict rebank_state_dict(const StateDict& weights, int64_t num_layers);

// load_state_dict, accepting per-layer names for a banked model (rebanked
// first): artifacts and #1406's own quantiser store the unbanked form.
void load_weights(GPT& model, StateDict weights);

// One line per parameter: name, shape, numel, dtype; then "model_params:N".
std::string parameter_table(GPT& model);

}  // namespace pgolf
