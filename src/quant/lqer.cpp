// LQER (see lqer.h), op for op as the record's _lqer_pack_asym / _lqer_pack
// and dequantize_mixed, so that the factors and the corrected weights match
// the script's bit for bit on the same SVD.
#include "quant/lqer.h"

#include <torch/torch.h>

#include "common/error.h"

namespace pgolf {
namespace {

using torch::indexing::Slice;

torch::Tensor to_fp16(const torch::Tensor& t) { return t.to(torch::kFloat16); }

LowRankFactors pack_asymmetric(const torch::Tensor& a, const torch::Tensor& b, int64_t group) {
  LowRankFactors f;
  f.asymmetric = true;
  f.a_scale = to_fp16(a.abs().amax().clamp_min(1e-10) / 1.5);
  f.a = torch::clamp(torch::round(a / f.a_scale.to(torch::kFloat32)), -2, 1).to(torch::kInt8);
  const torch::Tensor groups = b.reshape({-1, group});
  const torch::Tensor group_max = groups.abs().amax(-1, /*keepdim=*/true).clamp_min(1e-10);
  f.b_scale = to_fp16(group_max / 7.5).reshape(-1);
  f.b = torch::clamp(torch::round(groups / f.b_scale.to(torch::kFloat32).reshape({-1, 1})), -8, 7)
            .to(torch::kInt8)
            .reshape(b.sizes());
  return f;
}

LowRankFactors pack_symmetric(const torch::Tensor& a, const torch::Tensor& b, int bits) {
  const double range = (1 << (bits - 1)) - 1;
  const auto per_row = [range](const torch::Tensor& m) {
    const torch::Tensor scale = to_fp16(m.abs().amax(1).clamp_min(1e-10) / range);
    const torch::Tensor q =
        torch::clamp(torch::round(m / scale.to(torch::kFloat32).view({-1, 1})), -range, range)
            .to(torch::kInt8);
    return std::make_pair(q, scale);
  };
  LowRankFactors f;
  f.asymmetric = false;
  f.bits = bits;
  std::tie(f.a, f.a_scale) = per_row(a);
  std::tie(f.b, f.b_scale) = per_row(b);
  return f;
}

void check_codes(const torch::Tensor& q, std::pair<int, int> range, const std::string& what) {
  if (q.numel() == 0) return;
  PGOLF_CHECK(q.min().item<int>() >= range.first && q.max().item<int>() <= range.second,
              "{}: an LQER code lies outside [{}, {}]", what, range.first, range.second);
}

}  // namespace

int64_t LowRankFactors::nbytes() const {
  if (!defined()) return 0;
  return static_cast<int64_t>(a.nbytes() + a_scale.nbytes() + b.nbytes() + b_scale.nbytes());
}

std::pair<int, int> LowRankFactors::a_range() const {
  if (asymmetric) return {-2, 1};
  const int hi = (1 << (bits - 1)) - 1;
  return {-hi, hi};
}

std::pair<int, int> LowRankFactors::b_range() const {
  if (asymmetric) return {-8, 7};
  return a_range();
}

LowRankFactors lqer_factorize(const torch::Tensor& error, const LqerOptions& options) {
  PGOLF_CHECK(error.dim() == 2, "LQER: needs a 2-D error, got {}", c10::str(error.sizes()));
  PGOLF_CHECK(options.rank > 0, "LQER: rank must be positive");
  const torch::Tensor e = error.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  const auto [u, s, vh] = torch::linalg_svd(e, /*full_matrices=*/false);
  const int64_t r = std::min(options.rank, s.numel());
  const torch::Tensor a = (u.index({Slice(), Slice(0, r)}) * s.index({Slice(0, r)})).contiguous();
  const torch::Tensor b = vh.index({Slice(0, r), Slice()}).contiguous();
  if (options.asymmetric && b.numel() % options.group == 0) {
    return pack_asymmetric(a, b, options.group);
  }
  return pack_symmetric(a, b, static_cast<int>(options.factor_bits));
}

torch::Tensor lqer_correction(const LowRankFactors& f) {
  PGOLF_CHECK(f.defined(), "LQER: no factors");
  if (f.asymmetric) {
    // The script multiplies by float(sA): the fp16 value, exact in fp32.
    const torch::Tensor a = f.a.to(torch::kFloat32) * f.a_scale.to(torch::kFloat32).reshape({});
    const int64_t group = f.b.numel() / f.b_scale.numel();
    const torch::Tensor b =
        (f.b.reshape({-1, group}).to(torch::kFloat32) * f.b_scale.to(torch::kFloat32).view({-1, 1}))
            .reshape(f.b.sizes());
    return torch::matmul(a, b);
  }
  const torch::Tensor a = f.a.to(torch::kFloat32) * f.a_scale.to(torch::kFloat32).view({-1, 1});
  const torch::Tensor b = f.b.to(torch::kFloat32) * f.b_scale.to(torch::kFloat32).view({-1, 1});
  return torch::matmul(a, b);
}

void check_lqer_factors(const LowRankFactors& f, int64_t rows, int64_t cols,
                        const std::string& what) {
  PGOLF_CHECK(f.a.defined() && f.b.defined() && f.a_scale.defined() && f.b_scale.defined(),
              "{}: incomplete LQER factors", what);
  PGOLF_CHECK(f.a.scalar_type() == torch::kInt8 && f.b.scalar_type() == torch::kInt8,
              "{}: LQER codes are not int8", what);
  PGOLF_CHECK(
      f.a_scale.scalar_type() == torch::kFloat16 && f.b_scale.scalar_type() == torch::kFloat16,
      "{}: LQER scales are not fp16", what);
  PGOLF_CHECK(f.a.dim() == 2 && f.b.dim() == 2 && f.a.size(0) == rows && f.b.size(1) == cols &&
                  f.a.size(1) == f.b.size(0) && f.a.size(1) > 0,
              "{}: LQER factors {} x {} do not fit a {} x {} tensor", what, c10::str(f.a.sizes()),
              c10::str(f.b.sizes()), rows, cols);
  if (f.asymmetric) {
    PGOLF_CHECK(f.a_scale.numel() == 1 && f.b_scale.dim() == 1 && f.b_scale.numel() > 0 &&
                    f.b.numel() % f.b_scale.numel() == 0,
                "{}: asymmetric LQER scales {} / {} do not fit B {}", what,
                c10::str(f.a_scale.sizes()), c10::str(f.b_scale.sizes()), c10::str(f.b.sizes()));
  } else {
    PGOLF_CHECK(f.bits >= 2 && f.bits <= 8, "{}: LQER factor width {} outside [2, 8]", what,
                f.bits);
    PGOLF_CHECK(f.a_scale.dim() == 1 && f.a_scale.size(0) == rows && f.b_scale.dim() == 1 &&
                    f.b_scale.size(0) == f.b.size(0),
                "{}: symmetric LQER scales {} / {} do not fit the factors", what,
                c10::str(f.a_scale.sizes()), c10::str(f.b_scale.sizes()));
  }
  check_codes(f.a, f.a_range(), what);
  check_codes(f.b, f.b_range(), what);
}

}  // namespace pgolf
