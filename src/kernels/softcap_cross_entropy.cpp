// Cross-entropy of softcapped logits, per row: with s = cap * tanh(z / cap)
// and lse = log sum_j exp(s_j), loss = lse - s_target. Backward:
// dz_j = g * (exp(s_j - lse) - [j = target]) * (1 - (s_j / cap)^2).
// The plain composition is div, tanh, mul, log-softmax and the gather forward
// and as many passes backward over the (N, V) logits, the largest activation
// of the step. Here the forward reads z once (the row's s in a buffer that
// stays in L1) and the backward reads z and writes dz once, recomputing s.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/aminmax.h>
#include <ATen/ops/empty.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/fast_math.h"
#include "kernels/fused.h"
#include "kernels/rows.h"

namespace pgolf::kernels {
namespace {

// One row's pieces, generic (double, for the gradient checks) and for float
// eight lanes at a time (kernels/fast_math.h).

// s_j = cap * tanh(z_j / cap); returns max_j s_j.
template <typename T>
PGOLF_ALWAYS_INLINE T softcap_row(const T* z, T* s, int64_t V, T cap) {
  T peak = -std::numeric_limits<T>::infinity();
  for (int64_t j = 0; j < V; ++j) {
    s[j] = cap * fast_tanh(z[j] / cap);
    peak = std::max(peak, s[j]);
  }
  return peak;
}

PGOLF_ALWAYS_INLINE float softcap_row(const float* z, float* s, int64_t V, float cap) {
  f32x8 peak8 = splat(-std::numeric_limits<float>::infinity());
  int64_t j = 0;
  for (; j + kLanes <= V; j += kLanes) {
    const f32x8 v = cap * fast_tanh(load8(z + j) / cap);
    store8(s + j, v);
    peak8 = max8(peak8, v);
  }
  float peak = horizontal_max(peak8);
  for (; j < V; ++j) {
    s[j] = cap * fast_tanh(z[j] / cap);
    peak = std::max(peak, s[j]);
  }
  return peak;
}

// sum_j exp(s_j - peak).
template <typename T>
PGOLF_ALWAYS_INLINE T sum_exp_row(const T* s, int64_t V, T peak) {
  T sum = 0;
  for (int64_t j = 0; j < V; ++j) sum += fast_exp(s[j] - peak);
  return sum;
}

PGOLF_ALWAYS_INLINE float sum_exp_row(const float* s, int64_t V, float peak) {
  f32x8 sum8 = splat(0.0f);
  int64_t j = 0;
  for (; j + kLanes <= V; j += kLanes) sum8 += fast_exp(load8(s + j) - peak);
  float sum = horizontal_sum(sum8);
  for (; j < V; ++j) sum += fast_exp(s[j] - peak);
  return sum;
}

// dz_j = g * exp(s_j - lse) * (1 - u_j^2), u = tanh(z / cap), s = cap * u.
template <typename T>
PGOLF_ALWAYS_INLINE void softmax_grad_row(const T* z, T* dz, int64_t V, T cap, T g, T lse) {
  for (int64_t j = 0; j < V; ++j) {
    const T u = fast_tanh(z[j] / cap);
    dz[j] = g * fast_exp(cap * u - lse) * (T(1) - u * u);
  }
}

PGOLF_ALWAYS_INLINE void softmax_grad_row(const float* z, float* dz, int64_t V, float cap, float g,
                                          float lse) {
  int64_t j = 0;
  for (; j + kLanes <= V; j += kLanes) {
    const f32x8 u = fast_tanh(load8(z + j) / cap);
    store8(dz + j, g * fast_exp(cap * u - lse) * (1.0f - u * u));
  }
  for (; j < V; ++j) {
    const float u = fast_tanh(z[j] / cap);
    dz[j] = g * fast_exp(cap * u - lse) * (1.0f - u * u);
  }
}

template <typename T>
struct ForwardArgs {
  const T* z;  // (N, V) contiguous
  const int64_t* targets;
  T* loss;  // (N)
  T* lse;   // (N), saved for backward
  int64_t V;
  T cap;
};

template <typename T>
PGOLF_ALWAYS_INLINE void forward_rows(const ForwardArgs<T>& a, int64_t begin, int64_t end, T* s) {
  const int64_t V = a.V;
  for (int64_t r = begin; r < end; ++r) {
    const T peak = softcap_row(a.z + r * V, s, V, a.cap);
    const T sum = sum_exp_row(s, V, peak);
    const int64_t t = a.targets[r];  // in range: checked before the kernel runs
    a.lse[r] = peak + std::log(sum);
    a.loss[r] = a.lse[r] - s[t];
  }
}

template <typename T>
struct BackwardArgs {
  const T* z;
  const int64_t* targets;
  const T* lse;
  const T* g;  // (N) upstream gradient of each row's loss
  int64_t g_stride;
  T* dz;
  int64_t V;
  T cap;
};

template <typename T>
PGOLF_ALWAYS_INLINE void backward_rows(const BackwardArgs<T>& a, int64_t begin, int64_t end) {
  const int64_t V = a.V;
  for (int64_t r = begin; r < end; ++r) {
    const T* z = a.z + r * V;
    const T g = a.g[r * a.g_stride];
    softmax_grad_row(z, a.dz + r * V, V, a.cap, g, a.lse[r]);
    const int64_t t = a.targets[r];
    const T u = fast_tanh(z[t] / a.cap);
    a.dz[r * V + t] -= g * (T(1) - u * u);
  }
}

PGOLF_CPU_CLONES void forward_chunk(const ForwardArgs<float>& a, int64_t begin, int64_t end,
                                    float* s) {
  forward_rows(a, begin, end, s);
}
void forward_chunk(const ForwardArgs<double>& a, int64_t begin, int64_t end, double* s) {
  forward_rows(a, begin, end, s);
}
PGOLF_CPU_CLONES void backward_chunk(const BackwardArgs<float>& a, int64_t begin, int64_t end) {
  backward_rows(a, begin, end);
}
void backward_chunk(const BackwardArgs<double>& a, int64_t begin, int64_t end) {
  backward_rows(a, begin, end);
}

void check_inputs(const at::Tensor& z, const at::Tensor& targets) {
  TORCH_CHECK(z.dim() == 2, "softcap_cross_entropy: logits must be (N, V), got ", z.sizes());
  TORCH_CHECK(targets.dim() == 1 && targets.size(0) == z.size(0),
              "softcap_cross_entropy: targets must be (N) with N = ", z.size(0), ", got ",
              targets.sizes());
  TORCH_CHECK(targets.scalar_type() == at::kLong && targets.device() == z.device(),
              "softcap_cross_entropy: targets must be int64 on the logits' device");
  // Checked here, not in the kernel: nothing may throw out of the CPU clones
  // (GCC's target_clones dispatcher is not exception-safe).
  const auto [low_t, high_t] = at::aminmax(targets);
  const int64_t low = low_t.item<int64_t>(), high = high_t.item<int64_t>();
  TORCH_CHECK(low >= 0 && high < z.size(1), "softcap_cross_entropy: targets must be in [0, ",
              z.size(1), "), got [", low, ", ", high, "]");
}

// Returns (loss, lse), both (N).
std::pair<at::Tensor, at::Tensor> ce_forward(const at::Tensor& z_in, const at::Tensor& targets_in,
                                             double cap) {
  const auto z = z_in.contiguous();
  const auto targets = targets_in.contiguous();
  const int64_t N = z.size(0), V = z.size(1);
  auto loss = at::empty({N}, z.options());
  auto lse = at::empty({N}, z.options());
  AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "pgolf_softcap_cross_entropy", [&] {
    const ForwardArgs<scalar_t> args{z.data_ptr<scalar_t>(),
                                     targets.data_ptr<int64_t>(),
                                     loss.data_ptr<scalar_t>(),
                                     lse.data_ptr<scalar_t>(),
                                     V,
                                     static_cast<scalar_t>(cap)};
    at::parallel_for(0, N, row_grain(V), [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> s(V);
      forward_chunk(args, begin, end, s.data());
    });
  });
  return {loss, lse};
}

at::Tensor ce_backward(const at::Tensor& g, const at::Tensor& z, const at::Tensor& targets,
                       const at::Tensor& lse, double cap) {
  auto dz = at::empty(z.sizes(), z.options());
  const int64_t N = z.size(0), V = z.size(1);
  AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "pgolf_softcap_cross_entropy_backward", [&] {
    // The gradient of a mean arrives as an expanded scalar: stride 0 is fine.
    const BackwardArgs<scalar_t> args{z.data_ptr<scalar_t>(),
                                      targets.data_ptr<int64_t>(),
                                      lse.data_ptr<scalar_t>(),
                                      g.data_ptr<scalar_t>(),
                                      g.stride(0),
                                      dz.data_ptr<scalar_t>(),
                                      V,
                                      static_cast<scalar_t>(cap)};
    at::parallel_for(0, N, row_grain(V),
                     [&](int64_t begin, int64_t end) { backward_chunk(args, begin, end); });
  });
  return dz;
}

struct SoftcapCrossEntropyFunction : torch::autograd::Function<SoftcapCrossEntropyFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& z,
                            const at::Tensor& targets, double cap) {
    const auto zc = z.contiguous();
    const auto tc = targets.contiguous();
    auto [loss, lse] = ce_forward(zc, tc, cap);
    ctx->save_for_backward({zc, tc, lse});
    ctx->saved_data["cap"] = cap;
    return loss;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    return {ce_backward(grads[0], saved[0], saved[1], saved[2], ctx->saved_data["cap"].toDouble()),
            at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor softcap_cross_entropy(const at::Tensor& logits, const at::Tensor& targets, double cap) {
  TORCH_CHECK(supports(logits), "kernels::softcap_cross_entropy: needs CPU float/double logits");
  TORCH_CHECK(cap > 0, "kernels::softcap_cross_entropy: cap must be > 0, got ", cap);
  check_inputs(logits, targets);
  if (at::GradMode::is_enabled() && logits.requires_grad()) {
    return SoftcapCrossEntropyFunction::apply(logits, targets, cap);
  }
  return ce_forward(logits, targets, cap).first;
}

}  // namespace pgolf::kernels
