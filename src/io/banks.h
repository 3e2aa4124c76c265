// #1406's bank layout <-> per-layer matrices: a renaming of state-dict
// entries, used by the model's loader, the export and `pgolf inspect`.
#pragma once

#include <cstdint>

#include "io/state_dict.h"

namespace pgolf {

// #1406's banks <-> per-layer matrices under the unbanked names the script
// itself uses for quantisation (spec §8.1): qo_bank[i] = blocks.{i}.attn.c_q.weight,
// qo_bank[L+i] = blocks.{i}.attn.proj.weight, kv_bank[i] = ...c_k, kv_bank[L+i]
// = ...c_v, mlp_up_bank[i] = blocks.{i}.mlp.fc.weight, mlp_down_bank[i] =
// blocks.{i}.mlp.proj.weight. Other entries pass through, order kept (the
// unbanked matrices take the banks' place). A dict without banks is returned
// unchanged by unbank; rebank needs every per-layer matrix.
StateDict unbank_state_dict(const StateDict& weights, int64_t num_layers);
StateDict rebank_state_dict(const StateDict& weights, int64_t num_layers);

}  // namespace pgolf
