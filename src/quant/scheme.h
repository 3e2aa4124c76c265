// Which format each tensor gets, per entry (spec §3.5), and the whole-model
// quantizer built on it. An entry's scheme is a name:
//   int8    the challenge baseline (quant/int8.h, unchanged)
//   pr1406  int6 [-31,31] for attention and MLP (full GPTQ with a Hessian,
//           else the per-matrix clip search), int8 for embeddings and other
//           large tensors, fp16 for every tensor <= 65,536 elements
//   pr461   int5 MLP, int6 attention and bigram (row max, or the GPTQ_LITE
//   pr456   per-row search), fp16 tok_emb and cores.2.attn.c_k, fp16 for
//           tensors <= 8,192 elements, fp32 for large control tensors
//   pr562   as pr461 with the per-row clip search always on (full GPTQ with a
//           Hessian), fp16 tok_emb and blocks.8.attn.c_k
//   pr1855  int8 per row for the attention gates (attn_gate_w), fp16 for
//           every other tensor <= 65,536 elements, SDClip GPTQ for the rest:
//           int6 matrices, int7 tok_emb; then LQER on the LQER_TOP_K tensors
//           with the largest error (docs/entries/pr1855.md §7.3-7.5)
// #1406 names are its unbanked aliases (blocks.{i}.attn.c_q.weight, ...):
// splitting its banks into them is the caller's job.
#pragma once

#include <torch/types.h>

#include <optional>
#include <string>
#include <string_view>

#include "io/state_dict.h"
#include "quant/formats.h"
#include "quant/hessian.h"
#include "quant/int8.h"
#include "quant/lqer.h"

namespace pgolf {

// SchemeId: config/enums.h (QUANT_FORMAT).

// #1855's SDClip GPTQ: code widths, and the row clip k (in standard
// deviations) by role, the first that matches the name: "tok_emb" embed,
// ".mlp." mlp, ".attn." attn, else matrix.
struct SdClipOptions {
  int matrix_bits = 6;  // MATRIX_BITS
  int embed_bits = 7;   // EMBED_BITS
  double matrix_sigmas = 12.85;
  double mlp_sigmas = 11.5;
  double attn_sigmas = 13.0;
  double embed_sigmas = 14.0;
  bool gate_int8 = true;  // GATED_ATTN_QUANT_GATE

  int bits_for(const std::string& name) const;
  double sigmas_for(const std::string& name) const;
};

struct QuantScheme {
  SchemeId id = SchemeId::kInt8Baseline;
  bool gptq_lite = false;  // #461/#456 GPTQ_LITE=1 (§3.4.c); the others always search
  bool all_int5 = false;   // #461/#456 ALL_INT5=1: int5 for attention and bigram too
  // How the artifact stores intN codes. The entries store int8 containers
  // (§3.11); on synthetic Gaussian int6/int5 codes lzma -9 compressed them
  // 6-9% smaller than the packed bytes, so containers stay the default.
  CodeStorage storage = CodeStorage::kInt8Container;
  SdClipOptions sdclip;  // pr1855
  LqerOptions lqer;      // pr1855
};

// "int8" (or "baseline"), "pr1406", "pr461", "pr456", "pr562"; throws pgolf::Error otherwise.
QuantScheme quant_scheme(std::string_view name);
inline std::string_view scheme_name(SchemeId id) { return name_of(id); }

enum class TensorFormat {
  kPassthrough,  // non-float, stored unchanged
  kKeepFp32,     // float kept as fp32 (control tensors)
  kKeepFp16,     // float kept as fp16 (the baseline keeps fp16/fp64 tensors as they are)
  kInt8,         // int8, per row for 2-D (§3.2), else per tensor
  kInt7,         // #1855's tok_emb
  kInt6,
  kInt5,
};
constexpr std::array<EnumName<TensorFormat>, 7> enum_names(TensorFormat) {
  return {{{TensorFormat::kPassthrough, "passthrough"},
           {TensorFormat::kKeepFp32, "fp32"},
           {TensorFormat::kKeepFp16, "fp16"},
           {TensorFormat::kInt8, "int8"},
           {TensorFormat::kInt7, "int7"},
           {TensorFormat::kInt6, "int6"},
           {TensorFormat::kInt5, "int5"}}};
}
inline std::string_view format_name(TensorFormat format) { return name_of(format); }

// The format `scheme` gives tensor `name` (by the entry's name rules, size, dtype).
TensorFormat assign_format(const QuantScheme& scheme, const std::string& name,
                           const torch::Tensor& tensor);
// The format an exported entry holds.
TensorFormat entry_format(const QuantizedEntry& entry);

// Quantizes every tensor of `dict` by the scheme. `hessians` (by weight name,
// quant/hessian.h) switch int5/int6 2-D tensors to full GPTQ for pr1406 (exact
// name) and pr562 (substring and column match, as #562), and every pr1855
// matrix (exact name; without Hessians pr1855 rounds to nearest with the same
// scales); pr461/pr456 ignore them. Inputs are not modified; the result lives
// on the CPU.
QuantizedModel quantize_model(const StateDict& dict, const QuantScheme& scheme,
                              const Hessians* hessians = nullptr);
// The inverse: same names and order, original dtypes, CPU (= dequantize()).
StateDict dequantize_model(const QuantizedModel& model);

}  // namespace pgolf
