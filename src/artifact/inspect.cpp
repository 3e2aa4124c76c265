#include "artifact/inspect.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <utility>

#include "artifact/pergroup.h"
#include "common/code_size.h"
#include "common/error.h"
#include "common/format.h"
#include "common/progress.h"
#include "config/config.h"
#include "io/banks.h"
#include "quant/bitpack.h"
#include "quant/scheme.h"

namespace pgolf {
namespace {

// Zero-order entropy of int8 codes, bits per code.
double code_entropy(const torch::Tensor& q) {
  if (q.numel() == 0) return 0;
  const auto counts =
      torch::bincount(q.flatten().to(torch::kLong) + 128, {}, 256).to(torch::kDouble);
  const auto p = counts / static_cast<double>(q.numel());
  const auto nz = p.masked_select(p > 0);
  return -(nz * nz.log2()).sum().item<double>();
}

int64_t stored_bytes_of(const QuantizedEntry& e, CodeStorage storage) {
  int64_t bytes = 0;
  const bool intn =
      e.kind == QuantizedEntry::Kind::kIntNPerRow || e.kind == QuantizedEntry::Kind::kIntNPerTensor;
  if (intn && storage == CodeStorage::kBitPacked) {
    bytes = static_cast<int64_t>(packed_bytes(static_cast<uint64_t>(e.q.numel()), e.bits));
  } else {
    bytes = static_cast<int64_t>(e.q.nbytes());
  }
  if (e.scale.defined()) bytes += static_cast<int64_t>(e.scale.nbytes());
  bytes += e.lqer.nbytes();
  return bytes;
}

// The exporter's route for one tensor. Only pr1855's format names its
// quantizer (SDClip GPTQ for every intN matrix, int8 rows only for gates);
// the others' codes do not say whether GPTQ or a clip search made them.
std::string route_of(const QuantizedEntry& e, std::string_view quant_format) {
  using Kind = QuantizedEntry::Kind;
  const bool pr1855 = quant_format == scheme_quant_format(SchemeId::kPr1855);
  std::string route;
  switch (e.kind) {
    case Kind::kPassthrough:
      return "passthrough";
    case Kind::kKeptFloat:
      return fmt::format("{} pass-through", e.q.scalar_type() == torch::kFloat16 ? "fp16" : "fp32");
    case Kind::kInt8PerRow:
      return pr1855 ? "gate int8 per row" : "int8 per row";
    case Kind::kInt8PerTensor:
      return "int8 per tensor";
    case Kind::kIntNPerRow:
      route = pr1855 ? fmt::format("gptq int{}", e.bits) : fmt::format("int{} per row", e.bits);
      break;
    case Kind::kIntNPerTensor:
      route = fmt::format("int{} per tensor", e.bits);
      break;
  }
  if (e.lqer.defined()) {
    route += fmt::format(" + lqer r{} {}", e.lqer.rank(), e.lqer.asymmetric ? "asym" : "sym");
  }
  return route;
}

}  // namespace

double ArtifactReport::compression_ratio() const {
  return size.model_bytes > 0 ? static_cast<double>(original_bytes) / size.model_bytes : 0;
}

double ArtifactReport::bits_per_param() const {
  return params > 0 ? 8.0 * static_cast<double>(size.model_bytes) / params : 0;
}

ArtifactReport inspect_artifact(const LoadedArtifact& artifact, const StateDict* original) {
  ArtifactReport report;
  report.info = artifact.info;
  report.non_compliant = artifact.config.value("non_compliant", "");
  const QuantizedModel& model = artifact.model;
  report.storage = model.storage == CodeStorage::kBitPacked ? "packed" : "int8 containers";

  StateDict reference;
  if (original) {
    reference = *original;
    bool artifact_banked = false;
    for (const auto& e : model.entries) artifact_banked |= e.name == "qo_bank";
    if (has_tensor(reference, "qo_bank") && !artifact_banked) {
      const Config config = config_from_json(artifact.config);
      reference = unbank_state_dict(reference, config.model.num_layers);
    }
  }

  for (const auto& entry : model.entries) {
    TensorReport t;
    t.name = entry.name;
    t.format = std::string(format_name(entry_format(entry)));
    t.kind = std::string(kind_name(entry.kind));
    t.route = route_of(entry, artifact.info.quant_format);
    t.lqer_rank = entry.lqer.rank();
    t.lqer_bytes = entry.lqer.nbytes();
    if (artifact.info.codec == Codec::kPergroup && is_integer_kind(entry.kind) &&
        entry.q.dim() == 2 && model.storage != CodeStorage::kBitPacked) {
      t.group = pergroup_group(entry.name);
    }
    t.shape = entry.q.sizes().vec();
    t.numel = entry.q.numel();
    t.stored_bytes = stored_bytes_of(entry, model.storage);
    const bool integer = is_integer_kind(entry.kind);
    t.bits = integer ? entry.bits : static_cast<int>(8 * entry.q.element_size());
    if (t.numel > 0) {
      t.zero_frac = (entry.q == 0).sum().item<double>() / static_cast<double>(t.numel);
    }
    if (integer) t.entropy_bits = code_entropy(entry.q);
    if (original) {
      const torch::Tensor* w = nullptr;
      for (const auto& [name, tensor] : reference) {
        if (name == entry.name) w = &tensor;
      }
      if (w && w->is_floating_point()) {
        const auto orig = w->detach().to(torch::kCPU, torch::kDouble);
        const auto restored = dequantize_entry(entry).to(torch::kDouble);
        PGOLF_CHECK(orig.sizes() == restored.sizes(),
                    "--weights: '{}' has shape {}, the artifact's is {}", entry.name,
                    c10::str(orig.sizes()), c10::str(restored.sizes()));
        const auto diff = orig - restored;
        t.max_abs_error = t.numel > 0 ? diff.abs().max().item<double>() : 0.0;
        const double norm = orig.norm().item<double>();
        t.rel_rms_error = norm > 0 ? diff.norm().item<double>() / norm : 0.0;
      }
    }
    report.params += t.numel;
    report.original_bytes += t.numel * static_cast<int64_t>(c10::elementSize(entry.orig_dtype));
    report.stored_bytes += t.stored_bytes;
    report.tensors.push_back(std::move(t));
  }
  report.size = size_report(static_cast<int64_t>(artifact.info.file_bytes), code_size().bytes);
  return report;
}

std::string format_report(const ArtifactReport& r) {
  const ArtifactInfo& info = r.info;
  std::string out = fmt::format(
      "artifact: format v{} pgolf {} created {}\n"
      "quant_format: {} (codes stored as {}), codec: {} level {}\n",
      info.format_version, info.pgolf_version, info.created, info.quant_format, r.storage,
      codec_name(info.codec), info.level);
  if (!r.non_compliant.empty()) out += fmt::format("NON-COMPLIANT: {}\n", r.non_compliant);
  const bool grouped = !info.pergroup_streams.empty();
  out += fmt::format(
      "{:<40} {:<6} {:<32} {:>4} {:>16} {:>12} {:>12} {:>9} {:>7} {:>7} {:>10} {:>10}\n", "name",
      "format", "route", "bits", "shape", "params", "bytes", "lqer_B", "zeros", "H/code", "max_err",
      "rel_err");
  bool any_error = false;
  for (const auto& t : r.tensors) {
    any_error |= t.max_abs_error.has_value();
    const std::string route =
        grouped && t.group >= 0 ? fmt::format("{} [g{}]", t.route, t.group) : t.route;
    out += fmt::format(
        "{:<40} {:<6} {:<32} {:>4} {:>16} {:>12} {:>12} {:>9} {:>6.2f}% {:>7} {:>10} {:>10}\n",
        t.name, t.format, route, t.bits, shape_string(t.shape), with_commas(t.numel),
        with_commas(t.stored_bytes), t.lqer_rank > 0 ? with_commas(t.lqer_bytes) : "-",
        100.0 * t.zero_frac, t.entropy_bits > 0 ? fmt::format("{:.3f}", t.entropy_bits) : "-",
        t.max_abs_error ? fmt::format("{:.3e}", *t.max_abs_error) : "n/a",
        t.rel_rms_error ? fmt::format("{:.3e}", *t.rel_rms_error) : "n/a");
  }
  // Totals per format.
  struct Sum {
    int64_t tensors = 0, params = 0, bytes = 0;
  };
  std::vector<std::pair<std::string, Sum>> sums;
  for (const auto& t : r.tensors) {
    auto it =
        std::find_if(sums.begin(), sums.end(), [&](const auto& s) { return s.first == t.format; });
    if (it == sums.end()) {
      sums.emplace_back(t.format, Sum{});
      it = sums.end() - 1;
    }
    it->second.tensors += 1;
    it->second.params += t.numel;
    it->second.bytes += t.stored_bytes;
  }
  for (const auto& [format, s] : sums) {
    out += fmt::format("format {:<11} tensors:{} params:{} stored_bytes:{}\n", format, s.tensors,
                       with_commas(s.params), with_commas(s.bytes));
  }
  out += fmt::format("tensors:{} params:{}\n", r.tensors.size(), with_commas(r.params));
  if (grouped) {
    static constexpr std::array<std::string_view, 9> kStreams = {
        "g0 tok_emb", "g1 attn.c_k", "g2 attn.c_q", "g3 attn.c_v", "g4 attn.proj",
        "g5 mlp.fc",  "g6 mlp.proj", "remainder",   "row orders"};
    out += "pergroup streams (lrzip zpaq per group, brotli remainder and orders):";
    for (size_t i = 0; i < info.pergroup_streams.size() && i < kStreams.size(); ++i) {
      out += fmt::format(" {}={}", kStreams[i],
                         with_commas(static_cast<int64_t>(info.pergroup_streams[i])));
    }
    out += "\n";
  }
  out += fmt::format(
      "payload: {} bytes uncompressed -> {} compressed ({:.2f}x), file {} bytes (header {})\n",
      with_commas(static_cast<int64_t>(info.uncompressed_bytes)),
      with_commas(static_cast<int64_t>(info.compressed_bytes)),
      static_cast<double>(info.uncompressed_bytes) /
          static_cast<double>(std::max<uint64_t>(info.compressed_bytes, 1)),
      with_commas(static_cast<int64_t>(info.file_bytes)),
      with_commas(static_cast<int64_t>(info.header_bytes)));
  out += fmt::format("compression_ratio:{:.2f}x (original {} bytes / file) bits_per_param:{:.4f}\n",
                     r.compression_ratio(), with_commas(r.original_bytes), r.bits_per_param());
  out += fmt::format("Code size: {} bytes ({} files, this build)\n", with_commas(r.size.code_bytes),
                     code_size().files);
  out += fmt::format("Total submission size: {}{}\n", r.size.describe(),
                     r.size.fits() ? "" : "  ** OVER THE CAP **");
  if (!any_error) out += "quantization error: n/a (give --weights ORIGINAL.safetensors)\n";
  return out;
}

}  // namespace pgolf
