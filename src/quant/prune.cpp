// Magnitude and selective ±1 pruning (see prune.h).
#include "quant/prune.h"

#include <torch/torch.h>

#include <algorithm>
#include <map>
#include <vector>

#include "common/error.h"

namespace pgolf {
namespace {

using Kind = QuantizedEntry::Kind;

struct Candidate {
  int32_t entry;  // index into model.entries
  int64_t flat;   // row-major index into its codes
  float cost;     // s_row^2
};

// `model` with the first n candidates zeroed; only the touched entries are copied.
QuantizedModel with_pruned(const QuantizedModel& model, const std::vector<Candidate>& candidates,
                           int64_t n) {
  QuantizedModel out = model;
  std::vector<bool> cloned(model.entries.size(), false);
  for (int64_t i = 0; i < n; ++i) {
    const Candidate& c = candidates[static_cast<size_t>(i)];
    auto& entry = out.entries[static_cast<size_t>(c.entry)];
    if (!cloned[static_cast<size_t>(c.entry)]) {
      entry.q = entry.q.clone();
      cloned[static_cast<size_t>(c.entry)] = true;
    }
    entry.q.data_ptr<int8_t>()[c.flat] = 0;
  }
  return out;
}

}  // namespace

bool magnitude_prunable(const torch::Tensor& tensor) {
  return tensor.defined() && tensor.is_floating_point() && tensor.dim() == 2 &&
         tensor.numel() > kMagnitudePruneMinNumel;
}

int64_t magnitude_prune_tensor(torch::Tensor& tensor, double frac) {
  PGOLF_CHECK(frac >= 0.0 && frac <= 1.0, "magnitude pruning: fraction {} is outside [0, 1]", frac);
  PGOLF_CHECK(tensor.defined() && tensor.is_floating_point() && tensor.numel() > 0,
              "magnitude pruning: needs a non-empty float tensor");
  torch::NoGradGuard no_grad;
  const torch::Tensor threshold =
      at::quantile(tensor.detach().abs().to(torch::kFloat32).flatten(), frac);
  // Compared in the tensor's own dtype, as the seeds' `param.abs() < threshold` is.
  const torch::Tensor mask = tensor.detach().abs() < threshold;
  const int64_t zeroed = mask.sum().item<int64_t>();
  tensor.masked_fill_(mask, 0.0);
  return zeroed;
}

MagnitudePruneStats magnitude_prune(StateDict& dict, double frac) {
  MagnitudePruneStats stats;
  for (auto& [name, tensor] : dict) {
    if (!magnitude_prunable(tensor)) continue;
    stats.tensors += 1;
    stats.elements += tensor.numel();
    stats.zeroed += magnitude_prune_tensor(tensor, frac);
  }
  return stats;
}

SelectivePruneResult selective_prune(QuantizedModel& model, int64_t target_bytes,
                                     const SizeOfModel& size_of) {
  PGOLF_CHECK(static_cast<bool>(size_of), "selective_prune: no size function");
  std::vector<Candidate> candidates;
  for (size_t e = 0; e < model.entries.size(); ++e) {
    auto& entry = model.entries[e];
    if (entry.kind != Kind::kIntNPerRow) continue;
    PGOLF_CHECK(entry.q.scalar_type() == torch::kInt8 && entry.q.dim() == 2 &&
                    entry.scale.dim() == 1 && entry.scale.size(0) == entry.q.size(0),
                "selective_prune: tensor '{}' is not int8 codes with row scales", entry.name);
    entry.q = entry.q.contiguous();
    const int64_t cols = entry.q.size(1);
    const int8_t* q = entry.q.data_ptr<int8_t>();
    const torch::Tensor s = entry.scale.to(torch::kFloat32).contiguous();
    const float* sp = s.data_ptr<float>();
    for (int64_t i = 0; i < entry.q.numel(); ++i) {
      if (q[i] == 1 || q[i] == -1) {
        const float si = sp[i / cols];
        candidates.push_back({static_cast<int32_t>(e), i, si * si});
      }
    }
  }
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const Candidate& a, const Candidate& b) { return a.cost < b.cost; });

  SelectivePruneResult result;
  result.candidates = static_cast<int64_t>(candidates.size());
  std::map<int64_t, int64_t> sizes;  // n -> size(n), each evaluated once
  auto size_at = [&](int64_t n) {
    const auto it = sizes.find(n);
    if (it != sizes.end()) return it->second;
    result.size_evaluations += 1;
    const int64_t size = size_of(n == 0 ? model : with_pruned(model, candidates, n));
    sizes.emplace(n, size);
    return size;
  };
  result.size_before = size_at(0);
  result.size_after = result.size_before;
  if (result.size_before <= target_bytes || candidates.empty()) return result;

  const int64_t all = result.candidates;
  int64_t n = all;  // even pruning every candidate does not fit: prune them all
  if (size_at(all) <= target_bytes) {
    // The smallest n with size(n) <= target; size(0) > target >= size(all).
    int64_t lo = 0, hi = all;
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (size_at(mid) <= target_bytes) {
        hi = mid;
      } else {
        lo = mid + 1;
      }
    }
    n = lo;
  }
  result.pruned = n;
  result.size_after = size_at(n);
  model = with_pruned(model, candidates, n);
  return result;
}

}  // namespace pgolf
