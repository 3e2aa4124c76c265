#include "quant/fake_quant.h"

namespace pgolf {

torch::Tensor quantize_dequantize_rows(const torch::Tensor& w, const FakeQuantSpec& spec) {
  torch::NoGradGuard no_grad;
  const double qmax = static_cast<double>(spec.qmax);
  const auto w32 = w.detach().to(torch::kFloat);
  auto scale = w32.abs().amax(-1, /*keepdim=*/true) / qmax;
  if (spec.match_export) {
    scale =
        scale.clamp_min(1e-12).to(torch::kHalf).to(torch::kFloat).clamp_min(std::ldexp(1.0, -14));
  } else {
    scale = scale.clamp_min(1.0 / qmax);
  }
  const auto codes = torch::clamp(torch::round(w32 / scale), -(qmax + 1), qmax);
  return (codes * scale).to(w.scalar_type());
}

torch::Tensor fake_quantize(const torch::Tensor& w, const FakeQuantSpec& spec) {
  if (!spec.active()) return w;
  return w + (quantize_dequantize_rows(w, spec) - w).detach();
}

}  // namespace pgolf
