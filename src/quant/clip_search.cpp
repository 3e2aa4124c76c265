// GPTQ-lite clip search (see clip_search.h), with the seeds' op order: clips
// from fp32 |W|, fp16 scales by the grid's rule, codes with the stored scale.
#include "quant/clip_search.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/error.h"

namespace pgolf {
namespace {

torch::Tensor to_cpu_fp32_2d(const torch::Tensor& weight, const char* what) {
  const torch::Tensor w32 = weight.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  PGOLF_CHECK(w32.dim() == 2 && w32.size(1) > 0, "{}: needs a 2-D tensor with columns, got {}",
              what, c10::str(w32.sizes()));
  PGOLF_CHECK(torch::isfinite(w32).all().item<bool>(), "{}: the tensor has non-finite values",
              what);
  return w32;
}

void check_candidates(const std::vector<double>& candidates, const char* what) {
  PGOLF_CHECK(!candidates.empty(), "{}: no clip candidates", what);
  for (const double p : candidates) {
    PGOLF_CHECK(p > 0.0 && p <= 1.0, "{}: clip candidate {} is outside (0, 1]", what, p);
  }
}

}  // namespace

const std::vector<double>& clip_candidates_pr1406() {
  static const std::vector<double> kCandidates = {0.999, 0.9995, 0.9999, 0.99999, 1.0};
  return kCandidates;
}

const std::vector<double>& clip_candidates_pr461() {
  static const std::vector<double> kCandidates = {0.95, 0.975, 0.99, 0.995, 1.0};
  return kCandidates;
}

torch::Tensor row_clips(const torch::Tensor& w32, double p, ClipQuantile how) {
  const torch::Tensor a = w32.abs();
  if (how == ClipQuantile::kSortedIndex) {
    const int64_t cols = a.size(1);
    // int(p * (C - 1)) truncates, as Python's int() does for a positive float.
    const auto idx = std::min(static_cast<int64_t>(p * static_cast<double>(cols - 1)), cols - 1);
    return std::get<0>(a.sort(1)).select(1, idx).contiguous();
  }
  if (p >= 1.0) return a.amax(1);
  return at::quantile(a, p, /*dim=*/1);
}

IntQuantized clip_search_per_matrix(const torch::Tensor& weight, const IntGrid& grid,
                                    const std::vector<double>& candidates, int* chosen) {
  const torch::Tensor w32 = to_cpu_fp32_2d(weight, "clip_search_per_matrix");
  check_candidates(candidates, "clip_search_per_matrix");
  IntQuantized best;
  double best_err = std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < candidates.size(); ++i) {
    const torch::Tensor s =
        row_scales(row_clips(w32, candidates[i], ClipQuantile::kInterpolated), grid);
    const torch::Tensor q = quantize_with_scales(w32, s, grid);
    // fp32 mean, read as a double (the seeds' .item()).
    const double err = (w32 - dequantize_codes(q, s)).pow(2).mean().item<double>();
    if (err < best_err || !best.q.defined()) {
      best = {q, s};
      best_err = err;
      if (chosen) *chosen = static_cast<int>(i);
    }
  }
  return best;
}

IntQuantized clip_search_per_row(const torch::Tensor& weight, const IntGrid& grid,
                                 const std::vector<double>& candidates, ClipQuantile how) {
  const torch::Tensor w32 = to_cpu_fp32_2d(weight, "clip_search_per_row");
  check_candidates(candidates, "clip_search_per_row");
  torch::Tensor best_q, best_s, best_mse;
  for (const double p : candidates) {
    const torch::Tensor s = row_scales(row_clips(w32, p, how), grid);
    const torch::Tensor q = quantize_with_scales(w32, s, grid);
    const torch::Tensor mse = (w32 - dequantize_codes(q, s)).pow(2).mean(1);
    if (!best_q.defined()) {
      best_q = q;
      best_s = s;
      best_mse = mse;
      continue;
    }
    const torch::Tensor better = mse < best_mse;  // strict: ties keep the earlier p
    best_q = torch::where(better.unsqueeze(1), q, best_q);
    best_s = torch::where(better, s, best_s);
    best_mse = torch::where(better, mse, best_mse);
  }
  return {best_q.contiguous(), best_s.contiguous()};
}

double reconstruction_mse(const torch::Tensor& weight, const IntQuantized& quantized) {
  const torch::Tensor w32 = weight.detach().to(torch::kCPU, torch::kFloat32);
  return (w32 - dequantize_codes(quantized.q, quantized.scale)).pow(2).mean().item<double>();
}

}  // namespace pgolf
