#include "model/documents.h"

#include "common/error.h"
#include "model/attention.h"

namespace pgolf {

std::vector<std::vector<int64_t>> document_segments(const torch::Tensor& ids, int64_t max_len) {
  PGOLF_CHECK(ids.dim() == 2, "document_segments: ids must be (B, T), got {} dims", ids.dim());
  PGOLF_CHECK(max_len >= 0, "document_segments: max_len {} must be >= 0", max_len);
  const auto cpu = ids.to(torch::kCPU, torch::kLong).contiguous();
  const int64_t B = cpu.size(0), T = cpu.size(1);
  const int64_t* data = cpu.data_ptr<int64_t>();
  std::vector<std::vector<int64_t>> out(B);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t* row = data + b * T;
    std::vector<int64_t> docs{0};
    for (int64_t t = 1; t < T; ++t) {
      if (row[t] == kBosId) docs.push_back(t);
    }
    docs.push_back(T);
    auto& cu = out[b];
    for (size_t d = 0; d + 1 < docs.size(); ++d) {
      for (int64_t s = docs[d]; s<docs[d + 1]; s += max_len> 0 ? max_len : T) cu.push_back(s);
    }
    cu.push_back(T);
  }
  return out;
}

torch::Tensor segmented_causal_attention(const torch::Tensor& q, const torch::Tensor& k,
                                         const torch::Tensor& v,
                                         const std::vector<std::vector<int64_t>>& segments) {
  const int64_t B = q.size(0), T = q.size(2);
  PGOLF_CHECK(static_cast<int64_t>(segments.size()) == B && k.size(2) == T,
              "segmented attention: {} segment lists for {} rows (T {} vs {})", segments.size(), B,
              T, k.size(2));
  std::vector<torch::Tensor> rows;
  rows.reserve(B);
  for (int64_t b = 0; b < B; ++b) {
    const auto& cu = segments[b];
    PGOLF_CHECK(cu.size() >= 2 && cu.front() == 0 && cu.back() == T,
                "segmented attention: row {} boundaries do not cover [0, {})", b, T);
    std::vector<torch::Tensor> parts;
    parts.reserve(cu.size() - 1);
    for (size_t s = 0; s + 1 < cu.size(); ++s) {
      const int64_t lo = cu[s], len = cu[s + 1] - cu[s];
      auto part = [&](const torch::Tensor& x) { return x.slice(0, b, b + 1).narrow(2, lo, len); };
      parts.push_back(causal_attention(part(q), part(k), part(v)));
    }
    rows.push_back(parts.size() == 1 ? parts[0] : torch::cat(parts, 2));
  }
  return rows.size() == 1 ? rows[0] : torch::cat(rows, 0);
}

}  // namespace pgolf
