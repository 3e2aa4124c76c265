// The export after training (spec quantize-eval-ttt §6.1), for every scheme:
//
//   weights (banks unbanked into blocks.{i}.* matrices, §3.5.1)
//   -> magnitude pruning of the live model, in place (§3.8; PRUNE_FRAC)
//   -> Hessians from training batches or self-generated text (§3.7; GPTQ=1)
//   -> quantize by the scheme (§3.5; full GPTQ with the Hessians, §3.6)
//   -> selective ±1 pruning while the artifact is over TARGET_BYTES (§3.9)
//   -> artifact file -> size report (error over the cap unless ALLOW_OVERSIZE)
//   -> read back -> dequantize -> rebank -> load into the model -> validate
//
// with the reference's log lines (§6.2). The model ends holding the
// round-tripped weights, which is what `pgolf eval ARTIFACT` scores.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "artifact/artifact.h"
#include "common/log.h"
#include "config/config.h"
#include "eval/val_bpb.h"
#include "io/state_dict.h"
#include "model/gpt.h"
#include "quant/scheme.h"

namespace pgolf {

// The scheme QUANT's options describe (format, GPTQ_LITE, ALL_INT5, CODE_STORAGE).
QuantScheme scheme_for(const QuantConfig& quant);

// The artifact's file name in the run folder: final_model.int8.pgolf or
// final_model.int6.pgolf (the reference's .int8.ptz / .int6.ptz).
std::string artifact_file_name(const QuantConfig& quant);

// The model's weights as the artifact stores them: the state dict, with
// #1406's banks split into per-layer matrices. Tensors share the model's storage.
StateDict export_state_dict(GPT& model);

// The artifact's bytes with QUANT's compressor ("auto": the smallest).
std::string encode_for_config(const QuantizedModel& model, const Config& config);

// TARGET_BYTES resolved: the cap minus the code bytes when 0; < 0 when off.
int64_t selective_prune_target(const QuantConfig& quant, int64_t code_bytes);

struct ExportContext {
  GPT model{nullptr};  // trained; ends holding the round-tripped weights
  const Config* config = nullptr;
  std::filesystem::path run_dir;
  RunLog* log = nullptr;
  std::function<ValResult()> validate;  // validates `model` as it is now
  // GPTQ_CALIB=train: the next training batch's input ids (the loader continuing).
  std::function<torch::Tensor()> next_train_inputs;
  ValResult pre_export;  // the exported weights' validation, for the gap
};

struct ExportResult {
  std::filesystem::path artifact_path;
  SizeReport size;
  ValResult roundtrip;
  std::string roundtrip_name;  // final_int6_roundtrip, final_int8_zlib_roundtrip
  nlohmann::json details;      // for results.json: scheme, pruning, calibration, gap
};

ExportResult export_and_validate(ExportContext& ctx);

}  // namespace pgolf
