// Fused CPU kernels for the elementwise chains of the training step and the
// evaluation (issue #7). On the CPU every ATen op is a pass over memory, and
// the profile of the `cpu` step puts ~40 % of its time in such passes
// (RMSNorm's pow/mean/rsqrt/mul, RoPE's narrows/products/concatenations, the
// residual blends, relu then square, softcap's div/tanh/mul, log-softmax, and
// the backward of each); torch.compile's lead over eager PyTorch comes from
// fusing them. Each kernel here is one pass forward and one
// backward, with a hand-written backward checked by finite differences
// (tests/kernels). The causal attention is the one kernel that is mostly
// matrix products: ATen's CPU flash attention ran far below the matmul peak.
//
// They take CPU tensors of float or double whose last dimension is contiguous
// (`supports`). The model reaches them through the table this layer registers
// (common/fast_kernels.h), never by including this header, so the evaluator
// builds without them. Everywhere else (CUDA, bf16), with
// PGOLF_FUSED_KERNELS=0 and in a build without this layer the callers
// (model/layers.cpp, rotary.cpp, attention.cpp, gpt.cpp) run the plain ATen
// composition, which is also the definition the kernels are tested against.
#pragma once

#include <ATen/core/Tensor.h>

namespace pgolf::kernels {

// On by default; a run sets it from PGOLF_FUSED_KERNELS (the option table,
// applied by pipeline/run_context.h), tests and benchmarks directly.
bool fused_enabled();
void set_fused_enabled(bool enabled);

// Sets the switch for a scope and restores it after.
class FusedKernelsScope {
 public:
  explicit FusedKernelsScope(bool enabled) : previous_(fused_enabled()) {
    set_fused_enabled(enabled);
  }
  ~FusedKernelsScope() { set_fused_enabled(previous_); }
  FusedKernelsScope(const FusedKernelsScope&) = delete;
  FusedKernelsScope& operator=(const FusedKernelsScope&) = delete;

 private:
  bool previous_;
};

// Whether the kernels can take `x`: CPU, float/double, last dim contiguous.
bool supports(const at::Tensor& x);
// Whether callers should use them for `x`: enabled and supported.
bool applies(const at::Tensor& x);

// x * rsqrt(mean(x^2, -1) + eps) with eps = the dtype's machine epsilon
// (at::rms_norm with eps None). The result is contiguous.
at::Tensor rms_norm(const at::Tensor& x);

// Rotate-half RoPE of x (..., T, D) with tables cos, sin of (T, h) elements
// (any leading 1-dims), 2h <= D, the dims past 2h passing through
// (model/rotary.h's apply_rotary). The result is contiguous.
at::Tensor rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

// a * x + b * y with a, b (D) vectors over x, y (..., D) of one shape; `a`
// may be undefined (then x + b * y). The residual stream's blends and scaled
// adds. The result is contiguous.
at::Tensor mix(const at::Tensor& a, const at::Tensor& x, const at::Tensor& b, const at::Tensor& y);

// leaky_relu(x, slope)^2 (slope 0: relu(x)^2), the MLP's activation.
at::Tensor relu_square(const at::Tensor& x, double slope);

// Causal softmax attention softmax(q k^T / sqrt(D)) v of q (B, H, Tq, D) over
// k, v (B, Hkv, Tk, D), Tq <= Tk, H a multiple of Hkv (query head h reads KV
// head h / (H / Hkv)). The queries are the last Tq positions: query i sees
// keys j <= Tk - Tq + i (is_causal when Tq == Tk). Equal to
// scaled_dot_product_attention with that mask and enable_gqa. The result is
// a (B, H, Tq, D) view of (B, Tq, H, D) memory.
at::Tensor causal_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v);

// Per-row cross-entropy of the softcapped logits cap * tanh(z / cap):
// logits (N, V), targets (N) int64 in [0, V) -> losses (N), in the dtype of z.
// Equal to cross_entropy(cap * tanh(z / cap), targets, reduction none).
at::Tensor softcap_cross_entropy(const at::Tensor& logits, const at::Tensor& targets, double cap);

}  // namespace pgolf::kernels
