// common/fast_kernels: the kernels layer registers its table when linked (as
// in this binary and in `pgolf`); the switch and the tensors it takes decide
// whether the model gets it.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/fast_kernels.h"
#include "kernels/fused.h"

namespace pgolf {
namespace {

TEST(FastKernels, TheLinkedKernelsAreRegisteredForTheTensorsTheyTake) {
  const torch::Tensor x = torch::randn({4, 8});
  const FastKernels* fast = fast_kernels_for(x);
  ASSERT_NE(fast, nullptr);
  EXPECT_EQ(fast->rms_norm, &kernels::rms_norm);
  EXPECT_TRUE(torch::equal(fast->rms_norm(x), kernels::rms_norm(x)));
  EXPECT_EQ(fast_kernels_for(x.to(torch::kBFloat16)), nullptr);  // not theirs
  EXPECT_EQ(fast_kernels_for(x.t()), nullptr);                   // last dim strided
  {
    kernels::FusedKernelsScope off(false);
    EXPECT_FALSE(fast_kernels_enabled());
    EXPECT_EQ(fast_kernels_for(x), nullptr);
  }
  EXPECT_TRUE(fast_kernels_enabled());
}

}  // namespace
}  // namespace pgolf
