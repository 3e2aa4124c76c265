#include "optim/muon.h"

#include <ATen/ops/_foreach_add.h>
#include <ATen/ops/_foreach_mul.h>

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "dist/process_group.h"

namespace pgolf {

NsStep ns_coefficients(NsCoefficients kind, int64_t i) {
  if (kind == NsCoefficients::kQuintic) return {3.4445, -4.7750, 2.0315};
  // Polar Express (#1855's _PE_COEFFS, from PR #1344): per-iteration minimax tuples.
  static constexpr NsStep kPolarExpress[] = {
      {8.156554524902461, -22.48329292557795, 15.878769915207462},
      {4.042929935166739, -2.808917465908714, 0.5000178451051316},
      {3.8916678022926607, -2.772484153217685, 0.5060648178503393},
      {3.285753657755655, -2.3681294933425376, 0.46449024233003106},
      {2.3465413258596377, -1.7097828382687081, 0.42323551169305323},
  };
  PGOLF_CHECK(i >= 0 && i < 5, "Polar Express has 5 iterations, asked for number {}", i);
  return kPolarExpress[i];
}

int64_t ns_iterations(NsCoefficients kind, int64_t steps) {
  // The record slices its tuple list: more than five steps still runs five.
  return kind == NsCoefficients::kPolarExpress ? std::min<int64_t>(steps, 5) : steps;
}

torch::Tensor newton_schulz5(const torch::Tensor& G, int64_t steps, torch::ScalarType dtype,
                             double eps, NsCoefficients kind) {
  PGOLF_CHECK(G.dim() == 2 || G.dim() == 3,
              "newton_schulz5 expects a matrix or a bank, got {} dims", G.dim());
  steps = ns_iterations(kind, steps);
  auto X = G.to(dtype);
  const bool transposed = G.size(-2) > G.size(-1);
  if (G.dim() == 3) {
    // #1406's batched form over a bank: one Frobenius norm per matrix and
    // c * (A A) rather than (c A) A.
    if (transposed) X = X.mT();
    X = X / (X.norm(2, {-2, -1}, /*keepdim=*/true) + eps);
    for (int64_t i = 0; i < steps; ++i) {
      const auto [a, b, c] = ns_coefficients(kind, i);
      auto A = X.matmul(X.mT());
      auto B = b * A + c * A.matmul(A);
      X = a * X + B.matmul(X);
    }
    return transposed ? X.mT() : X;
  }
  // Same op order as the baseline: normalise in the working dtype, then
  // transpose tall matrices so X X^T is the small Gram matrix.
  X = X / (X.norm() + eps);
  if (transposed) X = X.t();
  for (int64_t i = 0; i < steps; ++i) {
    const auto [a, b, c] = ns_coefficients(kind, i);
    auto A = X.mm(X.t());
    auto B = b * A + (c * A).mm(A);
    X = a * X + B.mm(X);
  }
  return transposed ? X.t() : X;
}

namespace {

// bf16 rounding kept in fp32 storage: what a bf16 op does to its result.
torch::Tensor bf16_round(const torch::Tensor& x) {
  return x.to(torch::kBFloat16).to(torch::kFloat);
}

}  // namespace

torch::Tensor newton_schulz5_bf16_via_fp32(const torch::Tensor& G, int64_t steps, double eps,
                                           NsCoefficients kind) {
  PGOLF_CHECK(G.dim() == 2 || G.dim() == 3,
              "newton_schulz5 expects a matrix or a bank, got {} dims", G.dim());
  steps = ns_iterations(kind, steps);
  const auto r = bf16_round;
  // Op for op the bf16 path of newton_schulz5: each intermediate that is a
  // bf16 tensor there is rounded to bf16 here.
  auto X = r(G.to(torch::kFloat));
  const bool transposed = G.size(-2) > G.size(-1);
  if (G.dim() == 3) {
    if (transposed) X = X.mT();
    X = r(X / r(r(X.norm(2, {-2, -1}, /*keepdim=*/true)) + eps));
    for (int64_t i = 0; i < steps; ++i) {
      const auto [a, b, c] = ns_coefficients(kind, i);
      auto A = r(X.matmul(X.mT()));
      auto B = r(r(b * A) + r(c * r(A.matmul(A))));
      X = r(r(a * X) + r(B.matmul(X)));
    }
    return (transposed ? X.mT() : X).to(torch::kBFloat16);
  }
  X = r(X / r(r(X.norm()) + eps));
  if (transposed) X = X.t();
  for (int64_t i = 0; i < steps; ++i) {
    const auto [a, b, c] = ns_coefficients(kind, i);
    auto A = r(X.mm(X.t()));
    auto B = r(r(b * A) + r(r(c * A).mm(A)));
    X = r(r(a * X) + r(B.mm(X)));
  }
  return (transposed ? X.t() : X).to(torch::kBFloat16);
}

Muon::Muon(std::vector<torch::Tensor> params, MuonOptions options)
    : params_(std::move(params)), buffers_(params_.size()), options_(options) {
  for (const auto& p : params_) {
    PGOLF_CHECK(p.dim() == 2 || p.dim() == 3,
                "Muon optimises matrices and banks of matrices, got a {}-dim parameter", p.dim());
  }
}

void Muon::reset_state() { buffers_.assign(params_.size(), torch::Tensor()); }

torch::Tensor Muon::orthogonalized_update(size_t i, double momentum) {
  auto& p = params_[i];
  auto g = options_.bf16_momentum ? p.grad().to(torch::kBFloat16) : p.grad();
  if (options_.nesterov) g = g.add(buffers_[i], momentum);
  if (options_.row_normalize) {
    g = g / g.to(torch::kFloat).norm(2, {-1}, /*keepdim=*/true).clamp_min(1e-7).to(g.scalar_type());
  }
  const bool via_fp32 =
      options_.ns_bf16_via_fp32 && options_.ns_dtype == torch::kBFloat16 && g.device().is_cpu();
  auto update = via_fp32 ? newton_schulz5_bf16_via_fp32(g, options_.backend_steps, 1e-7,
                                                        options_.coefficients)
                         : newton_schulz5(g, options_.backend_steps, options_.ns_dtype, 1e-7,
                                          options_.coefficients);
  const double scale = std::sqrt(std::max(1.0, static_cast<double>(p.size(-2)) / p.size(-1)));
  return (update * scale).to(torch::kBFloat16);
}

void Muon::step(double lr, double momentum) {
  torch::NoGradGuard no_grad;
  // Momentum is cheap and kept for every parameter on every rank (so rank 0's
  // checkpoint holds all of it); the Newton-Schulz work is split: parameter i
  // is orthogonalised by rank i mod W, and the bf16 updates are summed across
  // ranks (each slice written by exactly one rank), as the reference's Muon.
  const bool split = group_ && group_->active();
  const int64_t W = split ? group_->world_size() : 1, rank = split ? group_->rank() : 0;
  std::vector<torch::Tensor> updates(params_.size());
  // Momentum for every matrix in two multi-tensor kernels (buf = m * buf + g).
  std::vector<torch::Tensor> bufs, grads;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!params_[i].grad().defined()) continue;
    const auto& grad = params_[i].grad();
    if (!buffers_[i].defined()) {
      buffers_[i] =
          torch::zeros_like(grad, options_.bf16_momentum ? torch::kBFloat16 : grad.scalar_type());
    }
    bufs.push_back(buffers_[i]);
    grads.push_back(options_.bf16_momentum ? grad.to(torch::kBFloat16) : grad);
  }
  if (options_.bf16_momentum) {
    // The record's buf.mul_(momentum) multiplies the bf16 buffer by the exact
    // momentum (a Python float: a wrapped double tensor); a Scalar operand, as
    // _foreach_mul_ takes, is rounded to bf16 first (0.92003 -> 0.91797), which
    // moved 75,765 of 81,920 values of a bank after the second step.
    const auto m = torch::scalar_tensor(momentum, torch::kDouble);
    for (size_t j = 0; j < bufs.size(); ++j) bufs[j].mul_(m).add_(grads[j]);
  } else if (!bufs.empty()) {
    at::_foreach_mul_(bufs, momentum);
    at::_foreach_add_(bufs, grads);
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!params_[i].grad().defined()) continue;
    if (static_cast<int64_t>(i) % W == rank) updates[i] = orthogonalized_update(i, momentum);
  }
  if (split) {
    std::vector<torch::Tensor> parts;
    for (size_t i = 0; i < params_.size(); ++i) {
      if (!params_[i].grad().defined()) continue;
      // fp32 carrier of bf16 values: a sum with zeros is exact in any dtype.
      parts.push_back(
          updates[i].defined()
              ? updates[i].to(torch::kFloat).reshape({-1})
              : torch::zeros({params_[i].numel()}, params_[i].options().dtype(torch::kFloat)));
    }
    auto flat = torch::cat(parts);
    group_->all_reduce_sum(flat);
    int64_t offset = 0;
    for (size_t i = 0; i < params_.size(); ++i) {
      if (!params_[i].grad().defined()) continue;
      const int64_t n = params_[i].numel();
      updates[i] = flat.narrow(0, offset, n).view(params_[i].sizes());
      offset += n;
    }
  }
  std::vector<torch::Tensor> stepped, deltas;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!updates[i].defined()) continue;
    stepped.push_back(params_[i]);
    deltas.push_back(updates[i].to(params_[i].scalar_type()));
  }
  if (stepped.empty()) return;
  if (options_.weight_decay > 0) at::_foreach_mul_(stepped, 1.0 - lr * options_.weight_decay);
  at::_foreach_add_(stepped, deltas, -lr);
}

}  // namespace pgolf
