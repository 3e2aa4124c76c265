// The baseline's int8 export ("int8_clean_per_row_v1", spec quantize-eval-ttt
// §3.1-3.2), reproduced exactly: for each state-dict entry, in order,
//   - non-float tensors pass through unchanged;
//   - float tensors with numel <= 65,536 are "kept float": control tensors
//     (names containing attn_scale, mlp_scale, resid_mix, q_gain, skip_weight,
//     ... ) as fp32, other fp32/bf16 tensors as fp16;
//   - other 2-D float tensors get per-row int8 with a 99.99984th-percentile
//     clip and an fp16 stored scale (quantized with the fp32 scale: the
//     reference's asymmetry, kept on purpose);
//   - other float tensors get per-tensor int8 with one fp32 scale.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/enum_names.h"
#include "config/enums.h"
#include "io/state_dict.h"
#include "quant/lqer.h"
#include "quant/param_groups.h"  // is_control_tensor: control tensors stay fp32

namespace pgolf {

inline constexpr std::string_view kInt8Format = "int8_clean_per_row_v1";
inline constexpr int64_t kInt8KeepFloatMaxNumel = 65'536;
inline constexpr double kInt8ClipQuantile = 99.99984 / 100.0;

// One exported tensor. The int8 kinds are the baseline's; the intN kinds hold
// the entries' int5/int6 codes (quant/intn.h), still one int8 per code in
// memory: how they are stored on disk is QuantizedModel::storage.
struct QuantizedEntry {
  enum class Kind {
    kPassthrough,
    kKeptFloat,
    kInt8PerRow,
    kInt8PerTensor,
    kIntNPerRow,     // codes of `bits` bits, fp16 [rows] scale
    kIntNPerTensor,  // codes of `bits` bits, fp16 0-D scale
  };

  std::string name;
  Kind kind = Kind::kPassthrough;
  // The stored tensor: int8 codes for the integer kinds, else the tensor as kept.
  torch::Tensor q;
  // Integer kinds only: fp16 [rows] (per row), fp32 0-D (int8 per tensor) or
  // fp16 0-D (intN per tensor).
  torch::Tensor scale;
  // The dtype dequantize() restores.
  torch::ScalarType orig_dtype = torch::kFloat32;
  // Code width of the integer kinds: every code lies in
  // [-2^(bits-1), 2^(bits-1) - 1]. 8 for the int8 kinds, 2..7 for intN
  // (the entries use 5 and 6); 0 for the float and passthrough kinds.
  int bits = 0;
  // kIntNPerRow only: #1855's low-rank correction (quant/lqer.h), added at
  // dequantization; undefined for every other tensor.
  LowRankFactors lqer = {};
};

// The kinds' names in artifacts and reports.
constexpr std::array<EnumName<QuantizedEntry::Kind>, 6> enum_names(QuantizedEntry::Kind) {
  using Kind = QuantizedEntry::Kind;
  return {{{Kind::kPassthrough, "passthrough"},
           {Kind::kKeptFloat, "kept_float"},
           {Kind::kInt8PerRow, "int8_per_row"},
           {Kind::kInt8PerTensor, "int8_per_tensor"},
           {Kind::kIntNPerRow, "intn_per_row"},
           {Kind::kIntNPerTensor, "intn_per_tensor"}}};
}
inline std::string_view kind_name(QuantizedEntry::Kind kind) { return name_of(kind); }
inline std::optional<QuantizedEntry::Kind> parse_kind_name(std::string_view name) {
  return find_by_name<QuantizedEntry::Kind>(name);
}
// True for the kinds that hold integer codes and a scale.
bool is_integer_kind(QuantizedEntry::Kind kind);

// How the artifact stores intN codes (CodeStorage, config/enums.h): one int8
// container per code, as every entry does (spec §3.11, the entropy coder
// removes the unused range), or packed at `bits` bits per code
// (quant/bitpack.h). Int8 codes are always bytes.

struct QuantizedModel {
  std::string format = std::string(kInt8Format);
  std::vector<QuantizedEntry> entries;  // state-dict order
  CodeStorage storage = CodeStorage::kInt8Container;
};

// The reference's quant_stats, recomputed from the quantized model.
struct QuantStats {
  int64_t param_count = 0;
  int64_t num_tensors = 0;
  int64_t num_float_tensors = 0;      // tensors that took an integer path
  int64_t num_nonfloat_tensors = 0;   // passthrough
  int64_t baseline_tensor_bytes = 0;  // numel x original itemsize
  int64_t int8_payload_bytes = 0;     // stored tensors + scales
};

// The reference's quantize_float_tensor, whatever the tensor's size: int8
// codes plus an fp16 [rows] scale for 2-D input, or an fp32 0-D scale otherwise.
std::pair<torch::Tensor, torch::Tensor> quantize_float_tensor_int8(const torch::Tensor& tensor);

// Tensors are moved to CPU; the input is not modified.
QuantizedModel quantize_int8(const StateDict& dict);
// Same names and order as the quantized dict, original dtypes restored, CPU.
// Handles every kind, so it also inverts quantize_model (quant/scheme.h).
StateDict dequantize(const QuantizedModel& model);
// One entry's restored tensor (original dtype, CPU).
torch::Tensor dequantize_entry(const QuantizedEntry& entry);
QuantStats quant_stats(const QuantizedModel& model);

// Per-tensor max |original - restored| (in fp64), in `original`'s order; the
// names must match.
std::vector<std::pair<std::string, double>> max_abs_errors(const StateDict& original,
                                                           const StateDict& restored);

}  // namespace pgolf
