// The config's enumerations, each with its one table of names (the values the
// environment variables, flags, config.json and artifact headers use).
#pragma once

#include <torch/types.h>

#include <array>
#include <string>
#include <string_view>

#include "common/enum_names.h"

namespace pgolf {

// How the block matrices are stored and named (spec §8).
enum class WeightLayout {
  kBlocks,  // blocks.{l}.attn.c_q.weight, ...                      (baseline, #562)
  kCores,   // cores.{c}.attn.c_q.weight + per-layer blocks.{l}.*   (#461, #456)
  kBanks    // qo_bank, kv_bank, mlp_up_bank, mlp_down_bank          (#1406)
};
constexpr std::array<EnumName<WeightLayout>, 3> enum_names(WeightLayout) {
  return {{{WeightLayout::kBlocks, "blocks"},
           {WeightLayout::kCores, "cores"},
           {WeightLayout::kBanks, "banks"}}};
}

// Weight initialisation (spec §3.11).
// orthogonal_unscaled: #1406's banks, layer by layer; orthogonal_attention_first:
// #1855's, every layer's attention banks first, then every layer's MLP.
enum class InitScheme { kBaseline, kOrthogonal, kOrthogonalUnscaled, kOrthogonalAttentionFirst };
constexpr std::array<EnumName<InitScheme>, 4> enum_names(InitScheme) {
  return {{{InitScheme::kBaseline, "baseline"},
           {InitScheme::kOrthogonal, "orthogonal"},
           {InitScheme::kOrthogonalUnscaled, "orthogonal_unscaled"},
           {InitScheme::kOrthogonalAttentionFirst, "orthogonal_attention_first"}}};
}

// How layer 0's values enter later layers: l0*v0 + l1*v (#562) or v + sigmoid(a)*v0 (#1406).
enum class ValueResidualMode { kLambda, kSigmoid };
constexpr std::array<EnumName<ValueResidualMode>, 2> enum_names(ValueResidualMode) {
  return {{{ValueResidualMode::kLambda, "lambda"}, {ValueResidualMode::kSigmoid, "sigmoid"}}};
}

// How #1855's two decoder lanes become one before the final norm: their
// mean, the attention lane or the MLP lane (PARALLEL_FINAL_LANE).
enum class ParallelFinalLane { kMean, kAttn, kMlp };
constexpr std::array<EnumName<ParallelFinalLane>, 3> enum_names(ParallelFinalLane) {
  return {{{ParallelFinalLane::kMean, "mean"},
           {ParallelFinalLane::kAttn, "attn"},
           {ParallelFinalLane::kMlp, "mlp"}}};
}

// Muon's Newton-Schulz coefficients: the fixed quintic (3.4445, -4.775,
// 2.0315) of the baseline, or #1855's per-iteration Polar Express tuples.
enum class NsCoefficients { kQuintic, kPolarExpress };
constexpr std::array<EnumName<NsCoefficients>, 2> enum_names(NsCoefficients) {
  return {
      {{NsCoefficients::kQuintic, "quintic"}, {NsCoefficients::kPolarExpress, "polar_express"}}};
}

// Which training loader: consecutive sequences of TRAIN_SEQ_LEN (the
// baseline's), or #1855's document packing (each rank one packed row from the
// shard's first BOS, the shard's tail skipped when a step does not fit).
enum class TrainLoader { kSequences, kDocuments };
constexpr std::array<EnumName<TrainLoader>, 2> enum_names(TrainLoader) {
  return {{{TrainLoader::kSequences, "sequences"}, {TrainLoader::kDocuments, "documents"}}};
}

// Score-first test-time training's update rule (spec quantize-eval-ttt §5).
enum class TttMode { kNone, kSgd, kAdamW, kMuon, kPhased };
constexpr std::array<EnumName<TttMode>, 5> enum_names(TttMode) {
  return {{{TttMode::kNone, "none"},
           {TttMode::kSgd, "sgd"},
           {TttMode::kAdamW, "adamw"},
           {TttMode::kMuon, "muon"},
           {TttMode::kPhased, "phased"}}};
}

// TTT's learning-rate cosine: across chunks, across steps, or none.
enum class TttSchedule { kChunk, kStep, kConstant };
constexpr std::array<EnumName<TttSchedule>, 3> enum_names(TttSchedule) {
  return {{{TttSchedule::kChunk, "chunk"},
           {TttSchedule::kStep, "step"},
           {TttSchedule::kConstant, "constant"}}};
}

// NON-COMPLIANT training on the validation split before scoring it (§5.6-5.7).
enum class ValAdapt { kNone, kPrequant, kPostquant };
constexpr std::array<EnumName<ValAdapt>, 3> enum_names(ValAdapt) {
  return {{{ValAdapt::kNone, "none"},
           {ValAdapt::kPrequant, "prequant"},
           {ValAdapt::kPostquant, "postquant"}}};
}

// The export's quantization scheme: which format each tensor gets (quant/scheme.h).
enum class SchemeId { kInt8Baseline, kPr1406, kPr461, kPr456, kPr562, kPr1855 };
constexpr std::array<EnumName<SchemeId>, 6> enum_names(SchemeId) {
  return {{{SchemeId::kInt8Baseline, "int8"},
           {SchemeId::kPr1406, "pr1406"},
           {SchemeId::kPr461, "pr461"},
           {SchemeId::kPr456, "pr456"},
           {SchemeId::kPr562, "pr562"},
           {SchemeId::kPr1855, "pr1855"}}};
}

// The artifact's compressor. pergroup: #1855's per-group pipeline (lrzip
// ZPAQ per tensor role, brotli for the rest); auto: the smallest of all.
enum class Compressor { kZlib, kZstd, kLzma, kBrotli, kPergroup, kAuto };
constexpr std::array<EnumName<Compressor>, 6> enum_names(Compressor) {
  return {{{Compressor::kZlib, "zlib"},
           {Compressor::kZstd, "zstd"},
           {Compressor::kLzma, "lzma"},
           {Compressor::kBrotli, "brotli"},
           {Compressor::kPergroup, "pergroup"},
           {Compressor::kAuto, "auto"}}};
}

// How intN codes are stored: one int8 container each, or bit-packed at their width.
enum class CodeStorage { kInt8Container, kBitPacked };
constexpr std::array<EnumName<CodeStorage>, 2> enum_names(CodeStorage) {
  return {{{CodeStorage::kInt8Container, "int8"}, {CodeStorage::kBitPacked, "packed"}}};
}

// GPTQ's calibration inputs: training batches, or text the model generates.
enum class CalibrationSource { kTrain, kSelfgen };
constexpr std::array<EnumName<CalibrationSource>, 2> enum_names(CalibrationSource) {
  return {{{CalibrationSource::kTrain, "train"}, {CalibrationSource::kSelfgen, "selfgen"}}};
}

// The compute dtype: bf16 on CUDA and fp32 on the CPU (auto), or as named.
enum class ComputeDtype { kAuto, kFp32, kBf16 };
constexpr std::array<EnumName<ComputeDtype>, 3> enum_names(ComputeDtype) {
  return {{{ComputeDtype::kAuto, "auto"},
           {ComputeDtype::kFp32, "fp32"},
           {ComputeDtype::kBf16, "bf16"}}};
}

// auto: bf16 on CUDA (what the entries run) and fp32 on the CPU (bf16 matmul
// is slow there without AVX512_BF16/AMX).
torch::ScalarType resolve_compute_dtype(ComputeDtype dtype, torch::Device device);

// Where the process computes: "cpu", "cuda" (the current GPU) or "cuda:N".
enum class DeviceKind { kCpu, kCuda };
constexpr std::array<EnumName<DeviceKind>, 2> enum_names(DeviceKind) {
  return {{{DeviceKind::kCpu, "cpu"}, {DeviceKind::kCuda, "cuda"}}};
}
struct DeviceSpec {
  DeviceKind kind = DeviceKind::kCpu;
  int index = -1;  // cuda:N; -1: the current device
  bool is_cuda() const { return kind == DeviceKind::kCuda; }
  std::string str() const;  // "cpu", "cuda", "cuda:1"
  static DeviceSpec parse(std::string_view text, std::string_view what);
  bool operator==(const DeviceSpec&) const = default;
};

}  // namespace pgolf
