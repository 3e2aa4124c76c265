// Full GPTQ (see gptq.h). Everything is fp32 torch ops in the seeds' order:
// the column loop cannot be batched (each column sees the errors of the ones
// before it), and the block update is one matmul per 128 columns.
#include "quant/gptq.h"

#include <torch/torch.h>

#include <limits>

#include "common/error.h"

namespace pgolf {
namespace {

using torch::indexing::None;
using torch::indexing::Slice;

void check_inputs(const torch::Tensor& w32, const torch::Tensor& h, int64_t block_size,
                  const char* what) {
  PGOLF_CHECK(w32.dim() == 2 && w32.size(1) > 0, "{}: needs a 2-D weight, got {}", what,
              c10::str(w32.sizes()));
  PGOLF_CHECK(h.dim() == 2 && h.size(0) == w32.size(1) && h.size(1) == w32.size(1),
              "{}: Hessian {} does not fit a weight with {} columns", what, c10::str(h.sizes()),
              w32.size(1));
  PGOLF_CHECK(block_size > 0, "{}: block size must be positive", what);
  PGOLF_CHECK(torch::isfinite(w32).all().item<bool>() && torch::isfinite(h).all().item<bool>(),
              "{}: non-finite weight or Hessian", what);
}

torch::Tensor cpu_fp32(const torch::Tensor& t) {
  return t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
}

// One blockwise GPTQ pass (#1406 and #1855) over the permuted W with fixed
// row scales `s`, using the upper Cholesky factor U of the permuted H^-1.
torch::Tensor gptq_pass(const torch::Tensor& w_perm, const torch::Tensor& u, const torch::Tensor& s,
                        const IntGrid& grid, int64_t block_size) {
  const int64_t rows = w_perm.size(0);
  const int64_t cols = w_perm.size(1);
  const torch::Tensor sf = s.to(torch::kFloat32);
  torch::Tensor q_all = torch::zeros({rows, cols}, torch::kInt8);
  torch::Tensor work = w_perm.clone();
  for (int64_t i1 = 0; i1 < cols; i1 += block_size) {
    const int64_t i2 = std::min(i1 + block_size, cols);
    const int64_t count = i2 - i1;
    torch::Tensor w1 = work.index({Slice(), Slice(i1, i2)}).clone();
    torch::Tensor q1 = torch::zeros({rows, count}, torch::kInt8);
    torch::Tensor err1 = torch::zeros({rows, count}, torch::kFloat32);
    const torch::Tensor u1 = u.index({Slice(i1, i2), Slice(i1, i2)});
    for (int64_t i = 0; i < count; ++i) {
      const torch::Tensor w = w1.select(1, i);
      const torch::Tensor d = u1.index({i, i});
      const torch::Tensor q =
          torch::clamp(torch::round(w / sf), grid.qmin, grid.qmax).to(torch::kInt8);
      q1.select(1, i).copy_(q);
      const torch::Tensor err = (w - q.to(torch::kFloat32) * sf) / d;
      w1.index({Slice(), Slice(i, None)})
          .sub_(err.unsqueeze(1) * u1.index({i, Slice(i, None)}).unsqueeze(0));
      err1.select(1, i).copy_(err);
    }
    q_all.index_put_({Slice(), Slice(i1, i2)}, q1);
    if (i2 < cols) {
      work.index({Slice(), Slice(i2, None)})
          .sub_(torch::matmul(err1, u.index({Slice(i1, i2), Slice(i2, None)})));
    }
  }
  return q_all;
}

// The act-ordered problem both #1406 and #1855 solve: dead columns zeroed,
// H damped, columns sorted by descending diag H, and the upper Cholesky
// factor of the permuted H^-1.
struct ActOrder {
  torch::Tensor w_perm;    // W[:, perm], dead columns 0
  torch::Tensor u;         // upper Cholesky factor of (H[perm][:, perm])^-1
  torch::Tensor inv_perm;  // undoes perm
};

ActOrder act_order(const torch::Tensor& w32, torch::Tensor h, double damp, const char* what) {
  const int64_t cols = w32.size(1);
  // Dead inputs (never active) get a unit diagonal and zero weights.
  const torch::Tensor dead = h.diagonal() == 0;
  h.diagonal().masked_fill_(dead, 1.0);
  h.diagonal().add_(damp * h.diagonal().mean());
  // The columns with the largest input energy go first.
  const torch::Tensor perm = torch::argsort(h.diagonal(), /*dim=*/-1, /*descending=*/true);
  ActOrder out;
  out.inv_perm = torch::argsort(perm);
  out.w_perm = w32.index_select(1, perm).clone();
  out.w_perm.index_put_({Slice(), dead.index_select(0, perm)}, 0.0);
  const torch::Tensor h_perm = h.index_select(0, perm).index_select(1, perm);
  try {
    const torch::Tensor l = torch::linalg_cholesky(h_perm);
    out.u = torch::linalg_cholesky(torch::cholesky_inverse(l), /*upper=*/true);
  } catch (const c10::Error&) {
    fail("{}: the damped Hessian ({}x{}) is not positive definite", what, cols, cols);
  }
  return out;
}

}  // namespace

IntQuantized gptq_quantize_pr1406(const torch::Tensor& weight, const torch::Tensor& hessian,
                                  const IntGrid& grid, const std::vector<double>& candidates,
                                  int64_t block_size) {
  const torch::Tensor w32 = cpu_fp32(weight);
  const torch::Tensor h = cpu_fp32(hessian).clone();
  check_inputs(w32, h, block_size, "gptq_quantize_pr1406");
  PGOLF_CHECK(!candidates.empty(), "gptq_quantize_pr1406: no clip candidates");
  const ActOrder ordered = act_order(w32, h, 0.005, "gptq_quantize_pr1406");

  torch::Tensor best_q, best_s;
  double best_err = std::numeric_limits<double>::infinity();
  for (const double p : candidates) {
    // Row clips come from the original (unpermuted) W.
    const torch::Tensor s = row_scales(row_clips(w32, p, ClipQuantile::kInterpolated), grid);
    const torch::Tensor q = gptq_pass(ordered.w_perm, ordered.u, s, grid, block_size);
    // Plain weight MSE against the permuted, dead-zeroed W (not Hessian-weighted).
    const double mse = (ordered.w_perm - dequantize_codes(q, s)).pow(2).mean().item<double>();
    if (mse < best_err || !best_q.defined()) {
      best_q = q;
      best_s = s;
      best_err = mse;
    }
  }
  return {best_q.index_select(1, ordered.inv_perm).contiguous(), best_s};
}

IntGrid sdclip_grid(int bits) {
  PGOLF_CHECK(bits >= 2 && bits <= 8, "SDClip: {} bits outside [2, 8]", bits);
  const int range = (1 << (bits - 1)) - 1;
  return IntGrid{bits, -range, range, ScaleRule::kPr461};
}

torch::Tensor sdclip_scales(const torch::Tensor& weight, int bits, double clip_sigmas) {
  const torch::Tensor w32 = cpu_fp32(weight);
  PGOLF_CHECK(w32.dim() == 2, "SDClip: needs a 2-D weight, got {}", c10::str(w32.sizes()));
  const int range = sdclip_grid(bits).qmax;
  return (w32.std(/*dim=*/1) * clip_sigmas / range).clamp_min(1e-10).to(torch::kFloat16);
}

IntQuantized gptq_quantize_sdclip(const torch::Tensor& weight, const torch::Tensor& hessian,
                                  int bits, double clip_sigmas, int64_t block_size) {
  const torch::Tensor w32 = cpu_fp32(weight);
  const torch::Tensor h = cpu_fp32(hessian).clone();
  check_inputs(w32, h, block_size, "gptq_quantize_sdclip");
  const IntGrid grid = sdclip_grid(bits);
  const torch::Tensor s = sdclip_scales(w32, bits, clip_sigmas);
  const ActOrder ordered = act_order(w32, h, 0.01, "gptq_quantize_sdclip");
  const torch::Tensor q = gptq_pass(ordered.w_perm, ordered.u, s, grid, block_size);
  return {q.index_select(1, ordered.inv_perm).contiguous(), s};
}

IntQuantized gptq_quantize_pr562(const torch::Tensor& weight, const torch::Tensor& hessian,
                                 const IntGrid& grid, int64_t block_size) {
  torch::Tensor w = cpu_fp32(weight).clone();
  torch::Tensor h = cpu_fp32(hessian).clone();
  check_inputs(w, h, block_size, "gptq_quantize_pr562");
  const int64_t rows = w.size(0);
  const int64_t cols = w.size(1);

  // The scales are fixed first, by the per-row round-to-nearest search.
  const torch::Tensor scale =
      clip_search_per_row(w, grid, clip_candidates_pr1406(), ClipQuantile::kInterpolated).scale;
  const torch::Tensor sf = scale.to(torch::kFloat32);

  h.diagonal().add_(0.01 * h.diagonal().mean());
  const torch::Tensor perm = torch::argsort(h.diagonal());  // ascending, as the seed does
  w = w.index_select(1, perm);
  h = h.index_select(0, perm).index_select(1, perm);
  torch::Tensor h_inv;
  try {
    h_inv = torch::cholesky_inverse(torch::linalg_cholesky(h));
  } catch (const c10::Error&) {
    h_inv = torch::diag(1.0 / h.diagonal().clamp_min(1e-8));
  }

  torch::Tensor q_all = torch::zeros({rows, cols}, torch::kInt8);
  for (int64_t i1 = 0; i1 < cols; i1 += block_size) {
    const int64_t i2 = std::min(i1 + block_size, cols);
    const int64_t count = i2 - i1;
    torch::Tensor wb = w.index({Slice(), Slice(i1, i2)}).clone();
    torch::Tensor err_b = torch::zeros_like(wb);
    for (int64_t j = 0; j < count; ++j) {
      const torch::Tensor w_col = wb.select(1, j);
      const torch::Tensor q_col =
          torch::clamp(torch::round(w_col / sf), grid.qmin, grid.qmax).to(torch::kInt8);
      q_all.select(1, i1 + j).copy_(q_col);
      const torch::Tensor err =
          (w_col - q_col.to(torch::kFloat32) * sf) / h_inv.index({i1 + j, i1 + j}).clamp_min(1e-8);
      err_b.select(1, j).copy_(err);
      if (j + 1 < count) {
        wb.index({Slice(), Slice(j + 1, None)})
            .sub_(err.unsqueeze(1) * h_inv.index({i1 + j, Slice(i1 + j + 1, i2)}).unsqueeze(0));
      }
    }
    if (i2 < cols) {
      w.index({Slice(), Slice(i2, None)})
          .sub_(torch::matmul(err_b, h_inv.index({Slice(i1, i2), Slice(i2, None)})));
    }
  }
  return {q_all.index_select(1, torch::argsort(perm)).contiguous(), scale};
}

double hessian_weighted_error(const torch::Tensor& weight, const IntQuantized& quantized,
                              const torch::Tensor& hessian) {
  const torch::Tensor d = weight.detach().to(torch::kCPU, torch::kFloat64) -
                          dequantize_codes(quantized.q, quantized.scale).to(torch::kFloat64);
  const torch::Tensor h = hessian.detach().to(torch::kCPU, torch::kFloat64);
  return torch::matmul(torch::matmul(d, h), d.t()).trace().item<double>();
}

}  // namespace pgolf
