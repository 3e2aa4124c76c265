// What runs on the round-tripped model after the export (spec
// quantize-eval-ttt §6.1), in the entries' order, printing their log lines
// (§6.2):
//
//   [VAL_ADAPT=postquant: NON-COMPLIANT fine-tuning on the whole split, #562]
//   sliding windows, EVAL_STRIDE > 0   {prefix}_sliding_window[_exact]
//   score-first TTT, TTT_MODE != none   ttt_sliding:*, legal_ttt[_exact]
//   phased LoRA TTT, TTT_MODE=phased    ttt_phased:*, legal_ttt_phased[_exact]
//
// `prefix` names the weights as the roundtrip line does (final_int6,
// final_int8_zlib, ...). Windows longer than TRAIN_SEQ_LEN use the NTK-aware
// RoPE base when EVAL_NTK=1 (§2.5). The model ends adapted when TTT ran.
#pragma once

#include <torch/types.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "data/tokenizer.h"
#include "eval/phased_ttt.h"
#include "eval/sliding.h"
#include "eval/ttt.h"
#include "eval/val_adapt.h"
#include "model/gpt.h"

namespace pgolf {

class ProcessGroup;

struct FinalEvalOptions {
  std::string prefix = "final";
  ProcessGroup* group = nullptr;
  std::function<void(const std::string&)> print;  // log lines (rank 0)
  bool quiet = false;                             // no live progress line
};

struct FinalEvalResult {
  std::optional<ValAdaptResult> adapt;
  std::optional<SlidingResult> sliding;
  std::optional<TttResult> ttt;
  std::optional<PhasedTttResult> phased;
  std::vector<std::string> non_compliant;  // reasons; empty when the run is compliant

  nlohmann::json to_json() const;
};

FinalEvalResult run_final_evaluation(GPT& model, const torch::Tensor& stream, const ByteLuts& luts,
                                     const Config& config, const FinalEvalOptions& options);

// The log-name prefix of the weights a roundtrip line names:
// final_int6_roundtrip -> final_int6.
std::string final_eval_prefix(const std::string& roundtrip_name);

}  // namespace pgolf
