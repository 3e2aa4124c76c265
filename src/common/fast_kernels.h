// The fused CPU kernels (src/kernels, kernels/fused.h) as the model reaches
// them: a table the kernels layer registers when it is linked in. The model
// never includes the kernels, so the evaluator's own build (the code bundle,
// docs/artifact.md) can leave them out and run the plain ATen ops, which are
// their definition (tests/kernels checks each kernel against them).
#pragma once

#include <ATen/core/Tensor.h>

namespace pgolf {

// Signatures and semantics: kernels/fused.h.
struct FastKernels {
  bool (*supports)(const at::Tensor& x);
  at::Tensor (*rms_norm)(const at::Tensor& x);
  at::Tensor (*rotary)(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);
  at::Tensor (*mix)(const at::Tensor& a, const at::Tensor& x, const at::Tensor& b,
                    const at::Tensor& y);
  at::Tensor (*relu_square)(const at::Tensor& x, double slope);
  at::Tensor (*causal_attention)(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v);
  at::Tensor (*softcap_cross_entropy)(const at::Tensor& logits, const at::Tensor& targets,
                                      double cap);
};

// Called once by the kernels layer at start-up.
void register_fast_kernels(const FastKernels* kernels);

// The switch (PGOLF_FUSED_KERNELS, applied by pipeline/run_context.h); on by default.
bool fast_kernels_enabled();
void set_fast_kernels_enabled(bool enabled);

// The kernels for `x` (registered, switched on, and x theirs: CPU, float or
// double, last dim contiguous), else nullptr: the caller runs the plain ops.
const FastKernels* fast_kernels_for(const at::Tensor& x);

}  // namespace pgolf
