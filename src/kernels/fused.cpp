#include "kernels/fused.h"

#include "common/fast_kernels.h"

namespace pgolf::kernels {
namespace {

// The model reaches the kernels through this table (common/fast_kernels.h);
// linking the layer registers it.
const FastKernels kTable = {
    &supports, &rms_norm, &rotary, &mix, &relu_square, &causal_attention, &softcap_cross_entropy};
const bool kRegistered = (register_fast_kernels(&kTable), true);

}  // namespace

bool fused_enabled() { return fast_kernels_enabled(); }

void set_fused_enabled(bool enabled) { set_fast_kernels_enabled(enabled); }

bool supports(const at::Tensor& x) {
  return x.device().is_cpu() && x.dim() >= 1 && x.numel() > 0 &&
         (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble) && x.stride(-1) == 1;
}

bool applies(const at::Tensor& x) { return fused_enabled() && supports(x); }

}  // namespace pgolf::kernels
