// NON-COMPLIANT: the two entries' modes that fine-tune on the validation
// split before scoring it (spec quantize-eval-ttt §5.6-5.7). The challenge
// allows training only on tokens already scored, so these break its rule;
// they exist so the entries' numbers can be reproduced, run only with
// ALLOW_NON_COMPLIANT=1, and everything they produce carries a
// `non_compliant` mark (config validation refuses them otherwise).
//
//  prequant  (#1406's dTTT, before the export): AdamW over all of V, one
//            group per block's own blocks.{i}. tensors at lr (0.3 + 0.7 i/(n-1))
//            and one at lr for the rest (the banks included), cosine per
//            epoch to the absolute floor 0.1 lr, clip 1.0, 32 sequences/step.
//  postquant (#562, on the round-tripped model): AdamW, proj x TTT_PROJ_LR_MULT,
//            fc x TTT_FC_LR_MULT, per-step cosine to 0, clip 1.0, 32 sequences.
//
// Both go through a LegalityAudit, whose report says they are not score-first.
#pragma once

#include <torch/types.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "config/config.h"
#include "eval/legality.h"
#include "model/gpt.h"

namespace pgolf {

class ProcessGroup;

struct ValAdaptResult {
  ValAdapt mode = ValAdapt::kNone;
  int64_t epochs = 0;
  int64_t steps = 0;
  double seconds = 0;
  std::vector<double> epoch_losses;  // token-weighted mean over all ranks
  LegalityReport legality;

  nlohmann::json to_json() const;
};

// Why `mode` (prequant | postquant) is non-compliant, for logs and reports.
std::string non_compliant_reason(ValAdapt mode);

ValAdaptResult adapt_on_validation(GPT& model, const torch::Tensor& stream, const TttConfig& ttt,
                                   int64_t train_seq_len, ProcessGroup* group,
                                   const std::function<void(const std::string&)>& print);

}  // namespace pgolf
