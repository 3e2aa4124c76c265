// Per-entry format rules (see scheme.h). Each entry's rules are checked in
// the entry's own order, because a name can match several (a small control
// tensor is "small" before it is "control").
#include "quant/scheme.h"

#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <initializer_list>
#include <tuple>

#include "common/error.h"
#include "quant/clip_search.h"
#include "quant/gptq.h"
#include "quant/intn.h"
#include "quant/lqer.h"
#include "quant/param_groups.h"

namespace pgolf {
namespace {

using Kind = QuantizedEntry::Kind;

bool contains_any(const std::string& name, std::initializer_list<std::string_view> patterns) {
  for (const std::string_view p : patterns) {
    if (name.find(p) != std::string::npos) return true;
  }
  return false;
}

// CONTROL_TENSOR_NAME_PATTERNS of each entry, spelled out here: the model's
// list (is_control_tensor, which the baseline export uses) is the union of
// all entries', and the entries differ (e.g. ve_layer_scales is control in
// #461 and #1406 only).
bool is_control(SchemeId id, const std::string& name) {
  if (id == SchemeId::kInt8Baseline) return is_control_tensor(name);
  if (contains_any(name, {"attn_scale", "attn_scales", "mlp_scale", "mlp_scales", "resid_mix",
                          "resid_mixes", "q_gain", "skip_weight", "skip_weights", "smear"})) {
    return true;
  }
  switch (id) {
    case SchemeId::kPr1406:
      return contains_any(
          name, {"dtg_gate", "ve_layer_scales", "ve_shared.scale", "attn_gate", "vr_lambda"});
    case SchemeId::kPr461:
      return contains_any(name, {"bigram.scale", "ve_layer_scales", "ve_shared.scale"});
    case SchemeId::kPr456:
    case SchemeId::kPr562:
      return contains_any(name, {"bigram.scale"});
    case SchemeId::kInt8Baseline:
    case SchemeId::kPr1855:  // routed by size alone (pr1855_format)
      break;
  }
  return false;
}

// FP16_KEEP_NAME_PATTERNS (#461/#456/#562).
bool is_fp16_keep(SchemeId id, const std::string& name) {
  switch (id) {
    case SchemeId::kPr461:
    case SchemeId::kPr456:
      return contains_any(name, {"tok_emb", "cores.2.attn.c_k"});
    case SchemeId::kPr562:
      return contains_any(name, {"tok_emb", "blocks.8.attn.c_k"});
    default:
      return false;
  }
}

// _classify_param: #1406 has no "bigram" category (its bigram tensors are "other").
enum class Category { kEmbed, kMlp, kBigram, kAttn, kOther };
Category classify(SchemeId id, const std::string& name) {
  if (contains_any(name, {"tok_emb", "lm_head"})) return Category::kEmbed;
  if (contains_any(name, {".mlp."})) return Category::kMlp;
  if (id != SchemeId::kPr1406 && contains_any(name, {"bigram"})) return Category::kBigram;
  // ".proj." outside ".mlp." (already taken) is attention: bigram.proj, ve_shared.proj.
  if (contains_any(name, {".attn.", ".proj."})) return Category::kAttn;
  return Category::kOther;
}

// #1855's routing (gptq_mixed_quantize): the gate rule comes before the size rule.
TensorFormat pr1855_format(const QuantScheme& scheme, const std::string& name,
                           const torch::Tensor& t) {
  const bool gate =
      name.ends_with(".attn_gate_w") && t.dim() == 2 && t.numel() >= 32 && t.numel() <= 8'192;
  if (scheme.sdclip.gate_int8 && gate) return TensorFormat::kInt8;
  if (t.numel() <= 65'536) return TensorFormat::kKeepFp16;
  switch (scheme.sdclip.bits_for(name)) {
    case 7:
      return TensorFormat::kInt7;
    case 6:
      return TensorFormat::kInt6;
    case 5:
      return TensorFormat::kInt5;
  }
  fail("pr1855: '{}' gets {} bits; MATRIX_BITS and EMBED_BITS must be 5, 6 or 7", name,
       scheme.sdclip.bits_for(name));
}

// #1855's _quantize_gate_int8_row: s = fp16(max|row| / 127), no percentile clip.
std::pair<torch::Tensor, torch::Tensor> quantize_gate_int8_row(const torch::Tensor& w) {
  const torch::Tensor w32 = w.to(torch::kFloat32).contiguous();
  const torch::Tensor s = (w32.abs().amax(1).clamp_min(1e-10) / 127.0).to(torch::kFloat16);
  const torch::Tensor q =
      torch::clamp(torch::round(w32 / s.to(torch::kFloat32).view({-1, 1})), -127, 127)
          .to(torch::kInt8);
  return {q, s};
}

// #1855's SDClip GPTQ (RTN with the same scales without a Hessian).
IntQuantized quantize_sdclip(const QuantScheme& scheme, const std::string& name,
                             const torch::Tensor& t, const Hessians* hessians) {
  PGOLF_CHECK(t.dim() == 2, "pr1855: '{}' is {}-D; SDClip quantizes matrices", name, t.dim());
  const int bits = scheme.sdclip.bits_for(name);
  const double sigmas = scheme.sdclip.sigmas_for(name);
  if (!hessians) {
    const torch::Tensor s = sdclip_scales(t, bits, sigmas);
    return {quantize_with_scales(t.to(torch::kFloat32), s, sdclip_grid(bits)), s};
  }
  const torch::Tensor* h = find_hessian(*hessians, name, t.size(1), HessianMatch::kExact);
  PGOLF_CHECK(h, "pr1855: no Hessian for '{}' (GPTQ calibration observed {} matrices)", name,
              hessians->size());
  return gptq_quantize_sdclip(t, *h, bits, sigmas);
}

// LQER (quant/lqer.h): the top_k GPTQ tensors by ||W - q*s||_F, largest
// first (a stable sort, as the script's sorted()), each given its factors.
void add_lqer(QuantizedModel& model, const StateDict& dict, const LqerOptions& options) {
  std::vector<std::pair<double, size_t>> norms;  // (error norm, entry index)
  for (size_t i = 0; i < model.entries.size(); ++i) {
    const QuantizedEntry& e = model.entries[i];
    if (e.kind != Kind::kIntNPerRow) continue;
    const torch::Tensor error =
        dict[i].second.to(torch::kCPU, torch::kFloat32) - dequantize_codes(e.q, e.scale);
    norms.emplace_back(static_cast<double>(error.norm().item<float>()), i);
  }
  std::stable_sort(norms.begin(), norms.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  const size_t k = std::min(norms.size(), static_cast<size_t>(options.top_k));
  for (size_t n = 0; n < k; ++n) {
    QuantizedEntry& e = model.entries[norms[n].second];
    const torch::Tensor error = dict[norms[n].second].second.to(torch::kCPU, torch::kFloat32) -
                                dequantize_codes(e.q, e.scale);
    e.lqer = lqer_factorize(error, options);
  }
}

int format_bits(TensorFormat format) {
  switch (format) {
    case TensorFormat::kInt7:
      return 7;
    case TensorFormat::kInt6:
      return 6;
    case TensorFormat::kInt5:
      return 5;
    default:
      break;
  }
  fail("format {} has no code width", format_name(format));
}

IntGrid grid_for(SchemeId id, TensorFormat format) {
  if (id == SchemeId::kPr1406) return int6_pr1406();
  return format == TensorFormat::kInt5 ? int5_pr461() : int6_pr461();
}

// int5/int6 codes of one tensor by the scheme's quantizer.
IntQuantized quantize_intn(const QuantScheme& scheme, const std::string& name,
                           const torch::Tensor& t, const IntGrid& grid, const Hessians* hessians) {
  if (t.dim() != 2) return quantize_per_tensor(t, grid);
  switch (scheme.id) {
    case SchemeId::kPr1406: {
      const torch::Tensor* h =
          hessians ? find_hessian(*hessians, name, t.size(1), HessianMatch::kExact) : nullptr;
      if (h) return gptq_quantize_pr1406(t, *h, grid);
      return clip_search_per_matrix(t, grid, clip_candidates_pr1406());
    }
    case SchemeId::kPr461:
    case SchemeId::kPr456:
      if (scheme.gptq_lite) {
        return clip_search_per_row(t, grid, clip_candidates_pr461(), ClipQuantile::kSortedIndex);
      }
      return quantize_rowmax(t, grid);
    case SchemeId::kPr562: {
      const torch::Tensor* h =
          hessians ? find_hessian(*hessians, name, t.size(1), HessianMatch::kSubstring) : nullptr;
      if (h) return gptq_quantize_pr562(t, *h, grid);
      return clip_search_per_row(t, grid, clip_candidates_pr1406(), ClipQuantile::kInterpolated);
    }
    case SchemeId::kInt8Baseline:
    case SchemeId::kPr1855:  // quantize_sdclip
      break;
  }
  fail("quantize: scheme {} has no int5/int6 tensors ('{}')", scheme_name(scheme.id), name);
}

QuantizedEntry quantize_entry(const QuantScheme& scheme, const std::string& name,
                              const torch::Tensor& tensor, const Hessians* hessians) {
  PGOLF_CHECK(tensor.defined(), "quantize: tensor '{}' is undefined", name);
  const torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
  QuantizedEntry entry;
  entry.name = name;
  entry.orig_dtype = t.scalar_type();
  const TensorFormat format = assign_format(scheme, name, t);
  switch (format) {
    case TensorFormat::kPassthrough:
      entry.kind = Kind::kPassthrough;
      entry.q = t;
      break;
    case TensorFormat::kKeepFp32:
      entry.kind = Kind::kKeptFloat;
      entry.q = t.to(torch::kFloat32).contiguous();
      break;
    case TensorFormat::kKeepFp16:
      entry.kind = Kind::kKeptFloat;
      entry.q = t.to(torch::kFloat16).contiguous();
      break;
    case TensorFormat::kInt8:
      entry.kind = t.dim() == 2 ? Kind::kInt8PerRow : Kind::kInt8PerTensor;
      entry.bits = 8;
      std::tie(entry.q, entry.scale) = scheme.id == SchemeId::kPr1855
                                           ? quantize_gate_int8_row(t)
                                           : quantize_float_tensor_int8(t);
      break;
    case TensorFormat::kInt7:
    case TensorFormat::kInt6:
    case TensorFormat::kInt5: {
      const IntQuantized q =
          scheme.id == SchemeId::kPr1855
              ? quantize_sdclip(scheme, name, t, hessians)
              : quantize_intn(scheme, name, t, grid_for(scheme.id, format), hessians);
      entry.kind = t.dim() == 2 ? Kind::kIntNPerRow : Kind::kIntNPerTensor;
      entry.bits = format_bits(format);
      entry.q = q.q;
      entry.scale = q.scale;
      break;
    }
  }
  return entry;
}

}  // namespace

int SdClipOptions::bits_for(const std::string& name) const {
  return name.find("tok_emb") != std::string::npos ? embed_bits : matrix_bits;
}

double SdClipOptions::sigmas_for(const std::string& name) const {
  if (name.find("tok_emb") != std::string::npos) return embed_sigmas;
  if (name.find(".mlp.") != std::string::npos) return mlp_sigmas;
  if (name.find(".attn.") != std::string::npos) return attn_sigmas;
  return matrix_sigmas;
}

QuantScheme quant_scheme(std::string_view name) {
  QuantScheme scheme;
  if (name != "baseline") scheme.id = parse_name<SchemeId>(name, "quantization scheme");
  return scheme;
}

TensorFormat assign_format(const QuantScheme& scheme, const std::string& name,
                           const torch::Tensor& tensor) {
  PGOLF_CHECK(tensor.defined(), "assign_format: tensor '{}' is undefined", name);
  const SchemeId id = scheme.id;
  if (!tensor.is_floating_point()) return TensorFormat::kPassthrough;
  if (id == SchemeId::kPr1855) return pr1855_format(scheme, name, tensor);
  const int64_t numel = tensor.numel();
  if (id == SchemeId::kInt8Baseline) {
    if (numel > kInt8KeepFloatMaxNumel) return TensorFormat::kInt8;
    return is_control(id, name) ? TensorFormat::kKeepFp32 : TensorFormat::kKeepFp16;
  }
  // Small tensors: fp16, control tensors included (they never reach rule 2).
  const int64_t keep_max = id == SchemeId::kPr1406 ? int64_t{65'536} : int64_t{8'192};
  if (numel <= keep_max) return TensorFormat::kKeepFp16;
  if (is_control(id, name)) return TensorFormat::kKeepFp32;
  if (is_fp16_keep(id, name)) return TensorFormat::kKeepFp16;
  const Category cat = classify(id, name);
  const bool int_cat = cat == Category::kMlp || cat == Category::kAttn ||
                       (cat == Category::kBigram && id != SchemeId::kPr1406);
  if (!int_cat || tensor.dim() < 1) return TensorFormat::kInt8;
  if (id == SchemeId::kPr1406) return TensorFormat::kInt6;  // "all-int6"
  if (cat == Category::kMlp || scheme.all_int5) return TensorFormat::kInt5;
  return TensorFormat::kInt6;
}

TensorFormat entry_format(const QuantizedEntry& entry) {
  switch (entry.kind) {
    case Kind::kPassthrough:
      return TensorFormat::kPassthrough;
    case Kind::kKeptFloat:
      return entry.q.scalar_type() == torch::kFloat32 ? TensorFormat::kKeepFp32
                                                      : TensorFormat::kKeepFp16;
    case Kind::kInt8PerRow:
    case Kind::kInt8PerTensor:
      return TensorFormat::kInt8;
    case Kind::kIntNPerRow:
    case Kind::kIntNPerTensor:
      if (entry.bits == 7) return TensorFormat::kInt7;
      if (entry.bits == 6) return TensorFormat::kInt6;
      if (entry.bits == 5) return TensorFormat::kInt5;
      break;
  }
  fail("tensor '{}': kind {} with {} bits has no entry format", entry.name, kind_name(entry.kind),
       entry.bits);
}

QuantizedModel quantize_model(const StateDict& dict, const QuantScheme& scheme,
                              const Hessians* hessians) {
  QuantizedModel model;
  if (scheme.id == SchemeId::kInt8Baseline) {
    model = quantize_int8(dict);  // the baseline's exact export
  } else {
    model.format = std::string(scheme_quant_format(scheme.id));
    model.entries.reserve(dict.size());
    for (const auto& [name, tensor] : dict) {
      model.entries.push_back(quantize_entry(scheme, name, tensor, hessians));
    }
    if (scheme.id == SchemeId::kPr1855 && scheme.lqer.enabled) add_lqer(model, dict, scheme.lqer);
  }
  model.storage = scheme.storage;
  return model;
}

StateDict dequantize_model(const QuantizedModel& model) { return dequantize(model); }

}  // namespace pgolf
