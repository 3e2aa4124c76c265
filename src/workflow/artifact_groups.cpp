#include "workflow/artifact_groups.h"

#include <array>

namespace pgolf {
namespace {

constexpr std::array<std::string_view, 6> kGroups = {
    "token embedding",           "attention", "MLP",
    "n-gram & value embeddings", "head",      "scalars & control"};

bool has(std::string_view name, std::string_view part) {
  return name.find(part) != std::string_view::npos;
}

}  // namespace

std::string_view tensor_group(std::string_view name) {
  if (has(name, "tok_emb")) return kGroups[0];
  if (has(name, "bigram") || has(name, "ve_shared")) return kGroups[3];
  if (has(name, "lm_head")) return kGroups[4];
  // Matrices only: per-head gains and scales inside attn/mlp are control tensors.
  const bool control = has(name, "scale") || has(name, "gain") || has(name, "lambda") ||
                       has(name, "mix") || has(name, "smear") || has(name, "skip");
  if (!control && (has(name, ".attn.") || has(name, "qo_bank") || has(name, "kv_bank")))
    return kGroups[1];
  if (!control && (has(name, ".mlp.") || has(name, "mlp_up_bank") || has(name, "mlp_down_bank")))
    return kGroups[2];
  return kGroups[5];
}

std::vector<SizeGroup> size_by_group(const ArtifactReport& report) {
  std::vector<SizeGroup> groups;
  for (std::string_view name : kGroups) groups.push_back(SizeGroup{std::string(name)});
  for (const TensorReport& t : report.tensors) {
    for (SizeGroup& g : groups) {
      if (g.name != tensor_group(t.name)) continue;
      ++g.tensors;
      g.params += t.numel;
      g.stored_bytes += t.stored_bytes;
    }
  }
  const double payload = static_cast<double>(report.info.compressed_bytes);
  const double stored = static_cast<double>(std::max<int64_t>(report.stored_bytes, 1));
  std::vector<SizeGroup> kept;
  for (SizeGroup& g : groups) {
    if (g.tensors == 0) continue;
    g.compressed_bytes = payload * static_cast<double>(g.stored_bytes) / stored;
    kept.push_back(g);
  }
  SizeGroup header{"header"};
  header.compressed_bytes = static_cast<double>(report.info.file_bytes) -
                            static_cast<double>(report.info.compressed_bytes);
  kept.push_back(header);
  return kept;
}

}  // namespace pgolf
