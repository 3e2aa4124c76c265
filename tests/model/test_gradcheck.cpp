// Gradients of every component against central finite differences in
// float64, on a tiny model with every technique on, in each weight layout.
// Every parameter tensor is probed, so each component's backward is checked
// through the whole model (including the banks' slicing, the recurrence's
// accumulation and the shared cores' 1/n gradient scaling), and #1855's stack
// (loop, lanes, gated skips, BOS-masked smear, sparse gate, document segments).
#include <gtest/gtest.h>

#include "model/gpt.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

class GradCheck : public ::testing::TestWithParam<std::string> {};

TEST_P(GradCheck, EveryParameterMatchesFiniteDifferences) {
  const auto config = testing::tiny_entry_config(GetParam());
  torch::manual_seed(11);
  GPT model(config);
  model->to(torch::kDouble);
  model->set_compute_dtype(torch::kDouble);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) p.add_(torch::randn_like(p) * 0.1);
  }
  // 12 tokens > rope_ntk_ref_len (8): the NTK branch is on.
  auto ids = torch::randint(2, config.vocab_size, {2, 12});
  ids[0][5] = 1;  // a document starts inside row 0 (#1855's BOS masks and segments)
  const auto targets = torch::randint(0, config.vocab_size, {2, 12});
  model->loss(ids, targets).backward();

  // Core 0 of the cores layout serves two layers: its gradient is the mean.
  auto expected_scale = [&](const std::string& name) {
    return name.starts_with("cores.0.") && config.num_cores() < config.num_layers ? 0.5 : 1.0;
  };
  const double eps = 1e-6;
  int64_t probes = 0;
  for (const auto& item : model->named_parameters()) {
    auto p = item.value();
    // An unused parameter (#1406's vrl_alpha of block 0, which has no v0 to
    // mix) has no gradient, as in PyTorch; finite differences must agree it is 0.
    auto flat = p.detach().view({-1});
    auto grad = p.grad().defined() ? p.grad().view({-1}) : torch::zeros_like(flat);
    const int64_t n = flat.numel();
    for (int64_t index : {int64_t{0}, n / 2, n - 1}) {
      const double original = flat[index].item<double>();
      double up, down;
      {
        torch::NoGradGuard no_grad;
        flat[index] = original + eps;
        up = model->loss(ids, targets).item<double>();
        flat[index] = original - eps;
        down = model->loss(ids, targets).item<double>();
        flat[index] = original;
      }
      const double fd = (up - down) / (2 * eps) * expected_scale(item.key());
      const double analytic = grad[index].item<double>();
      EXPECT_NEAR(analytic, fd, 1e-7 + 1e-5 * std::abs(fd)) << item.key() << "[" << index << "]";
      ++probes;
    }
  }
  EXPECT_GT(probes, 60);
}

INSTANTIATE_TEST_SUITE_P(Layouts, GradCheck,
                         ::testing::Values("blocks", "cores", "banks", "pr1855"));

}  // namespace
}  // namespace pgolf
