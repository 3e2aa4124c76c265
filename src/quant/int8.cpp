// The baseline int8 quantizer and its inverse (see int8.h). Each step follows
// the reference's op order and dtypes, because the exported bytes (and so the
// compressed size and the round-trip val_bpb) depend on every rounding.
#include "quant/int8.h"

#include <torch/torch.h>

#include <unordered_map>

#include "common/error.h"

namespace pgolf {
namespace {

using Kind = QuantizedEntry::Kind;

// Per-row int8 of a 2-D tensor: the clip is quantized with the fp32 scale,
// but the fp16-rounded scale is what gets stored (and used by dequantize).
std::pair<torch::Tensor, torch::Tensor> quantize_per_row(const torch::Tensor& t32) {
  // An empty matrix has no quantile; the reference leaves its clip
  // uninitialised (torch.empty), zeros make it deterministic.
  const torch::Tensor clip = t32.numel() > 0 ? at::quantile(t32.abs(), kInt8ClipQuantile, /*dim=*/1)
                                             : torch::zeros({t32.size(0)}, torch::kFloat32);
  const torch::Tensor clip_col = clip.unsqueeze(1);
  const torch::Tensor clipped = torch::maximum(torch::minimum(t32, clip_col), -clip_col);
  const torch::Tensor scale = (clip / 127.0).clamp_min(1.0 / 127.0);
  const torch::Tensor q =
      torch::clamp(torch::round(clipped / scale.unsqueeze(1)), -127, 127).to(torch::kInt8);
  return {q.contiguous(), scale.to(torch::kFloat16).contiguous()};
}

// Per-tensor int8 of any other shape: one fp32 scalar scale. The clip is a
// Python float (fp64) in the reference, and the scale is divided in fp64
// before it is rounded to fp32; both are kept.
std::pair<torch::Tensor, torch::Tensor> quantize_per_tensor(const torch::Tensor& t32) {
  const double clip =
      t32.numel() > 0 ? at::quantile(t32.abs().flatten(), kInt8ClipQuantile).item<double>() : 0.0;
  const torch::Tensor scale = torch::scalar_tensor(clip > 0 ? clip / 127.0 : 1.0, torch::kFloat32);
  const torch::Tensor q =
      torch::clamp(torch::round(torch::clamp(t32, -clip, clip) / scale), -127, 127)
          .to(torch::kInt8);
  return {q.contiguous(), scale};
}

QuantizedEntry quantize_entry(const std::string& name, const torch::Tensor& tensor) {
  PGOLF_CHECK(tensor.defined(), "quantize: tensor '{}' is undefined", name);
  const torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
  QuantizedEntry entry;
  entry.name = name;
  entry.orig_dtype = t.scalar_type();
  if (!t.is_floating_point()) {
    entry.kind = Kind::kPassthrough;
    entry.q = t;
    return entry;
  }
  if (t.numel() <= kInt8KeepFloatMaxNumel) {
    // Small tensors are cheap: keep them, fp16 except control tensors.
    entry.kind = Kind::kKeptFloat;
    if (is_control_tensor(name)) {
      entry.q = t.to(torch::kFloat32).contiguous();
    } else if (t.scalar_type() == torch::kFloat32 || t.scalar_type() == torch::kBFloat16) {
      entry.q = t.to(torch::kFloat16).contiguous();
    } else {
      entry.q = t;
    }
    return entry;
  }
  entry.kind = t.dim() == 2 ? Kind::kInt8PerRow : Kind::kInt8PerTensor;
  entry.bits = 8;
  std::tie(entry.q, entry.scale) = quantize_float_tensor_int8(t);
  return entry;
}

}  // namespace

torch::Tensor dequantize_entry(const QuantizedEntry& entry) {
  switch (entry.kind) {
    case Kind::kPassthrough:
    case Kind::kKeptFloat:
      return entry.q.to(entry.orig_dtype).contiguous();
    // Per row and per tensor share one formula whatever the code width:
    // q.float() * scale.float(), then the original dtype (spec §3.1).
    case Kind::kInt8PerRow:
    case Kind::kIntNPerRow: {
      PGOLF_CHECK(
          entry.q.dim() >= 1 && entry.scale.dim() == 1 && entry.scale.size(0) == entry.q.size(0),
          "dequantize: tensor '{}': {} row scales do not fit a {}-dim tensor", entry.name,
          entry.scale.numel(), entry.q.dim());
      std::vector<int64_t> view(static_cast<size_t>(entry.q.dim()), 1);
      view[0] = entry.q.size(0);
      const torch::Tensor s = entry.scale.to(torch::kFloat32).view(view);
      torch::Tensor w = entry.q.to(torch::kFloat32) * s;
      if (entry.lqer.defined()) w = w + lqer_correction(entry.lqer);  // #1855's LQER
      return w.to(entry.orig_dtype).contiguous();
    }
    case Kind::kInt8PerTensor:
    case Kind::kIntNPerTensor: {
      PGOLF_CHECK(entry.scale.numel() == 1,
                  "dequantize: tensor '{}': per-tensor scale has {} values", entry.name,
                  entry.scale.numel());
      const torch::Tensor s = entry.scale.to(torch::kFloat32).reshape({});
      return (entry.q.to(torch::kFloat32) * s).to(entry.orig_dtype).contiguous();
    }
  }
  fail("dequantize: tensor '{}' has an invalid kind", entry.name);
}

std::pair<torch::Tensor, torch::Tensor> quantize_float_tensor_int8(const torch::Tensor& tensor) {
  PGOLF_CHECK(tensor.defined() && tensor.is_floating_point(),
              "quantize_float_tensor_int8: needs a floating-point tensor");
  const torch::Tensor t32 = tensor.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  return t32.dim() == 2 ? quantize_per_row(t32) : quantize_per_tensor(t32);
}

bool is_integer_kind(Kind kind) {
  return kind == Kind::kInt8PerRow || kind == Kind::kInt8PerTensor || kind == Kind::kIntNPerRow ||
         kind == Kind::kIntNPerTensor;
}

QuantizedModel quantize_int8(const StateDict& dict) {
  QuantizedModel model;
  model.entries.reserve(dict.size());
  for (const auto& [name, tensor] : dict) model.entries.push_back(quantize_entry(name, tensor));
  return model;
}

StateDict dequantize(const QuantizedModel& model) {
  StateDict dict;
  dict.reserve(model.entries.size());
  for (const auto& entry : model.entries) dict.emplace_back(entry.name, dequantize_entry(entry));
  return dict;
}

QuantStats quant_stats(const QuantizedModel& model) {
  QuantStats stats;
  for (const auto& entry : model.entries) {
    const int64_t numel = entry.q.numel();
    stats.param_count += numel;
    stats.num_tensors += 1;
    stats.baseline_tensor_bytes += numel * static_cast<int64_t>(c10::elementSize(entry.orig_dtype));
    stats.int8_payload_bytes += static_cast<int64_t>(entry.q.nbytes());
    if (entry.kind == Kind::kPassthrough) stats.num_nonfloat_tensors += 1;
    if (is_integer_kind(entry.kind)) {
      stats.num_float_tensors += 1;
      stats.int8_payload_bytes += static_cast<int64_t>(entry.scale.nbytes());
    }
    stats.int8_payload_bytes += entry.lqer.nbytes();
  }
  return stats;
}

std::vector<std::pair<std::string, double>> max_abs_errors(const StateDict& original,
                                                           const StateDict& restored) {
  std::unordered_map<std::string, const torch::Tensor*> by_name;
  for (const auto& [name, tensor] : restored) by_name[name] = &tensor;
  PGOLF_CHECK(by_name.size() == original.size(), "max_abs_errors: {} tensors restored, {} original",
              by_name.size(), original.size());
  std::vector<std::pair<std::string, double>> errors;
  errors.reserve(original.size());
  for (const auto& [name, a] : original) {
    const auto it = by_name.find(name);
    PGOLF_CHECK(it != by_name.end(), "max_abs_errors: tensor '{}' was not restored", name);
    const torch::Tensor& b = *it->second;
    PGOLF_CHECK(a.sizes() == b.sizes(), "max_abs_errors: tensor '{}' changed shape", name);
    const double err = a.numel() == 0 ? 0.0
                                      : (a.detach().to(torch::kCPU, torch::kFloat64) -
                                         b.detach().to(torch::kCPU, torch::kFloat64))
                                            .abs()
                                            .max()
                                            .item<double>();
    errors.emplace_back(name, err);
  }
  return errors;
}

}  // namespace pgolf
