// The int5/int6 grid and its scale rules (see intn.h). The ops and dtypes
// follow the seeds' order exactly (fp32 divide, clamp, fp16 round, clamp),
// because a different order changes the stored fp16 scales.
#include "quant/intn.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/error.h"

namespace pgolf {

std::string IntGrid::describe() const {
  return fmt::format("int{} [{}, {}] ({} scale floor)", bits, qmin, qmax,
                     rule == ScaleRule::kPr1406 ? "#1406" : "#461");
}

IntGrid int6_pr1406() { return IntGrid{6, -31, 31, ScaleRule::kPr1406}; }
IntGrid int6_pr461() { return IntGrid{6, -32, 31, ScaleRule::kPr461}; }
IntGrid int5_pr461() { return IntGrid{5, -16, 15, ScaleRule::kPr461}; }

torch::Tensor row_scales(const torch::Tensor& clip, const IntGrid& grid) {
  const torch::Tensor c = clip.to(torch::kFloat32);
  if (grid.rule == ScaleRule::kPr1406) {
    // The floor 1/qmax applies in fp32, before the fp16 rounding.
    return (c / grid.qmax).clamp_min(1.0 / grid.qmax).to(torch::kFloat16).contiguous();
  }
  // A tiny floor in fp32, then fp16, then the smallest normal fp16 (2^-14).
  return (c / grid.qmax)
      .clamp_min(1e-12)
      .to(torch::kFloat16)
      .clamp_min(std::ldexp(1.0, -14))
      .contiguous();
}

torch::Tensor quantize_with_scales(const torch::Tensor& w32, const torch::Tensor& scale,
                                   const IntGrid& grid) {
  const torch::Tensor s =
      scale.dim() == 0 ? scale.to(torch::kFloat32) : scale.to(torch::kFloat32).unsqueeze(1);
  return torch::clamp(torch::round(w32 / s), grid.qmin, grid.qmax).to(torch::kInt8).contiguous();
}

torch::Tensor dequantize_codes(const torch::Tensor& q, const torch::Tensor& scale) {
  if (scale.dim() == 0) return q.to(torch::kFloat32) * scale.to(torch::kFloat32);
  std::vector<int64_t> view(static_cast<size_t>(q.dim()), 1);
  view[0] = q.size(0);
  return q.to(torch::kFloat32) * scale.to(torch::kFloat32).view(view);
}

IntQuantized quantize_rowmax(const torch::Tensor& weight, const IntGrid& grid) {
  const torch::Tensor w32 = weight.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  PGOLF_CHECK(w32.dim() == 2, "quantize_rowmax: needs a 2-D tensor, got {}-D", w32.dim());
  const torch::Tensor clip =
      w32.numel() > 0 ? w32.abs().amax(1) : torch::zeros({w32.size(0)}, torch::kFloat32);
  const torch::Tensor s = row_scales(clip, grid);
  return {quantize_with_scales(w32, s, grid), s};
}

IntQuantized quantize_per_tensor(const torch::Tensor& weight, const IntGrid& grid) {
  const torch::Tensor w32 = weight.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  // amax is a Python float in the seeds: the division happens in fp64.
  const double amax = w32.numel() > 0 ? w32.abs().max().item<double>() : 0.0;
  const double s = grid.rule == ScaleRule::kPr1406 ? (amax > 0 ? amax / grid.qmax : 1.0)
                                                   : std::max(amax / grid.qmax, 1e-12);
  const torch::Tensor scale = torch::scalar_tensor(s, torch::kFloat16);
  // #461's 1e-12 becomes an fp16 zero for an all-zero tensor: its codes are
  // 0/0 there; zeros restore the tensor exactly.
  if (scale.item<float>() == 0.0f) return {torch::zeros_like(w32, torch::kInt8), scale};
  return {quantize_with_scales(w32, scale, grid), scale};
}

}  // namespace pgolf
