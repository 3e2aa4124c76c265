// The causal attention kernel (kernels/attention.cpp) and the block products
// under it (kernels/gemm.h): equal to SDPA with the causal (or bottom-right)
// mask and grouped KV heads, values and every input gradient, at shapes that
// reach every tile edge; its backward against finite differences; results
// that do not depend on the thread count.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <optional>
#include <vector>

#include "kernels/fused.h"
#include "kernels/gemm.h"
#include "tests/kernels/checks.h"

namespace pgolf::kernels {
namespace {

using checks::expect_gradient_matches_finite_differences;
using checks::max_abs_diff;

struct AttentionShape {
  int64_t batch, heads, kv_heads, q_len, kv_len, dim;
};

// q, k, v as the model makes them: q and k contiguous (B, heads, T, D), v a
// (B, T, Hkv, D) projection viewed as (B, Hkv, T, D).
struct Inputs {
  explicit Inputs(const AttentionShape& s, torch::ScalarType dtype = torch::kFloat)
      : q(torch::randn({s.batch, s.heads, s.q_len, s.dim}, dtype)),
        k(torch::randn({s.batch, s.kv_heads, s.kv_len, s.dim}, dtype)),
        v(torch::randn({s.batch, s.kv_len, s.kv_heads, s.dim}, dtype).transpose(1, 2)) {}
  torch::Tensor q, k, v;
};

torch::Tensor sdpa(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  const int64_t Tq = q.size(2), T = k.size(2);
  std::optional<torch::Tensor> mask;
  if (Tq < T) mask = torch::ones({Tq, T}, torch::kBool).tril(T - Tq);
  return at::scaled_dot_product_attention(q, k, v, mask, 0.0, /*is_causal=*/Tq == T, std::nullopt,
                                          /*enable_gqa=*/q.size(1) != k.size(1));
}

TEST(CausalAttention, MatchesSdpaValuesAndGradientsAtEveryTileEdge) {
  torch::manual_seed(11);
  const std::vector<AttentionShape> shapes = {
      {1, 1, 1, 1, 1, 8},       // one position
      {2, 4, 2, 70, 70, 16},    // a 6-row tail, a 64-row block and a partial one
      {2, 4, 2, 33, 100, 16},   // the last 33 of 100 positions (bottom-right)
      {1, 2, 1, 130, 130, 24},  // columns past the last 16-wide tile
      {2, 4, 4, 64, 256, 64},   // no grouping; the evaluation's scored tail
      {1, 2, 2, 300, 300, 64},  // scores deeper than one 256-deep slice
      {1, 3, 1, 1, 5, 8},       // one query over five keys
      {1, 2, 1, 40, 51, 16},    // a score tile starting at the last key a row tile sees
  };
  for (const auto& s : shapes) {
    SCOPED_TRACE(testing::Message() << "B" << s.batch << " H" << s.heads << " Hkv" << s.kv_heads
                                    << " Tq" << s.q_len << " T" << s.kv_len << " D" << s.dim);
    const Inputs in(s);
    std::vector<torch::Tensor> ours, ref;
    for (auto* leaves : {&ours, &ref}) {
      for (const auto& t : {in.q, in.k, in.v}) leaves->push_back(t.detach().requires_grad_(true));
    }
    const auto y = causal_attention(ours[0], ours[1], ours[2]);
    const auto y_ref = sdpa(ref[0], ref[1], ref[2]);
    ASSERT_EQ(y.sizes(), y_ref.sizes());
    EXPECT_LE(max_abs_diff(y, y_ref), 2e-6);
    const auto g = torch::randn_like(y_ref);
    const auto grads = torch::autograd::grad({y}, ours, {g});
    const auto grads_ref = torch::autograd::grad({y_ref}, ref, {g});
    for (int i = 0; i < 3; ++i) {
      const double scale = std::max(1.0, grads_ref[i].abs().max().item<double>());
      EXPECT_LE(max_abs_diff(grads[i], grads_ref[i]), 4e-6 * scale) << "input " << i;
    }
  }
}

TEST(CausalAttention, OutputIsLaidOutForTheProjection) {
  torch::manual_seed(12);
  const Inputs in({2, 4, 2, 9, 9, 8});
  const auto y = causal_attention(in.q, in.k, in.v);
  EXPECT_TRUE(y.transpose(1, 2).is_contiguous());  // (B, T, H, D) memory: no copy before Wo
}

TEST(CausalAttention, GradientMatchesFiniteDifferences) {
  torch::manual_seed(13);
  // Grouped heads and a bottom-right block: 5 queries over 7 keys.
  const Inputs in({1, 4, 2, 5, 7, 3}, torch::kDouble);
  const auto q = in.q, k = in.k, v = in.v.contiguous();
  expect_gradient_matches_finite_differences(
      q, [&](const torch::Tensor& x) { return causal_attention(x, k, v); });
  expect_gradient_matches_finite_differences(
      k, [&](const torch::Tensor& x) { return causal_attention(q, x, v); });
  expect_gradient_matches_finite_differences(
      v, [&](const torch::Tensor& x) { return causal_attention(q, k, x); });
}

TEST(CausalAttention, SameBitsOnOneAndTwoThreads) {
  torch::manual_seed(14);
  const Inputs in({3, 4, 2, 100, 100, 32});
  const int threads = at::get_num_threads();
  std::vector<std::vector<torch::Tensor>> results;
  for (int n : {1, 2}) {
    at::set_num_threads(n);
    std::vector<torch::Tensor> leaves;
    for (const auto& t : {in.q, in.k, in.v}) leaves.push_back(t.detach().requires_grad_(true));
    const auto y = causal_attention(leaves[0], leaves[1], leaves[2]);
    auto grads = torch::autograd::grad({y}, leaves, {torch::ones_like(y)});
    grads.insert(grads.begin(), y.detach());
    results.push_back(grads);
  }
  at::set_num_threads(threads);
  for (size_t i = 0; i < results[0].size(); ++i) {
    EXPECT_TRUE(torch::equal(results[0][i], results[1][i])) << "tensor " << i;
  }
}

TEST(CausalAttention, RunsUnderInferenceModeAndRejectsWhatItCannotTake) {
  torch::manual_seed(15);
  const Inputs in({1, 4, 2, 6, 6, 8});
  {
    c10::InferenceMode inference;
    EXPECT_LE(max_abs_diff(causal_attention(in.q, in.k, in.v), sdpa(in.q, in.k, in.v)), 2e-6);
  }
  const auto k3 = torch::randn({1, 3, 6, 8});
  EXPECT_THROW(causal_attention(in.q, k3, k3), c10::Error);  // 4 heads over 3 KV heads
  const auto k_short = torch::randn({1, 2, 5, 8});
  EXPECT_THROW(causal_attention(in.q, k_short, k_short), c10::Error);  // more queries than keys
  EXPECT_THROW(causal_attention(in.q, in.k.to(torch::kDouble), in.v), c10::Error);
  EXPECT_THROW(causal_attention(in.q, in.k, in.v.transpose(-1, -2)), c10::Error);  // strided rows
}

// C = [C +] A . B through gemm::multiply_floats against at::mm, A plain or stored
// transposed, with and without accumulation.
void expect_product(int64_t M, int64_t N, int64_t K, bool transposed_a, bool accumulate) {
  const auto a = torch::randn({M, K});
  const auto b = torch::randn({K, N + 3}).slice(1, 0, N);  // a row stride past N
  const auto a_stored = transposed_a ? a.t().contiguous() : a;
  auto c = torch::randn({M, N});
  const auto expected = (accumulate ? c : torch::zeros({M, N})) + at::mm(a, b);
  gemm::multiply_floats(M, N, K, {a_stored.data_ptr<float>(), transposed_a ? M : K, transposed_a},
                        {b.data_ptr<float>(), N + 3}, {c.data_ptr<float>(), N}, accumulate);
  EXPECT_LE(max_abs_diff(c, expected), 1e-5 * std::max<int64_t>(K, 1))
      << M << "x" << N << "x" << K << " transposed " << transposed_a << " accumulate "
      << accumulate;
}

TEST(Gemm, MultipliesLikeMmForEveryTileRemainder) {
  torch::manual_seed(16);
  for (int64_t M : {1, 5, 6, 13, 64}) {
    for (int64_t N : {1, 16, 21, 64}) {
      for (int64_t K : {0, 1, 7, 64, 300}) {
        for (bool transposed : {false, true}) {
          for (bool accumulate : {false, true}) expect_product(M, N, K, transposed, accumulate);
        }
      }
    }
  }
}

TEST(Gemm, BandsSkipOnlyWhatIsZeroOrUnwanted) {
  torch::manual_seed(17);
  // diagonal 12: the score tile of rows 0-5 and columns 16-31 is wanted only
  // for C(5, 16), the edge a skipped tile must not cross.
  const int64_t M = 20, N = 48, K = 48, diagonal = 12;
  // Lower band of A: A(i, k) = 0 for k >= i + diagonal.
  const auto lower = torch::ones({M, K}).tril(diagonal - 1);
  const auto a = torch::randn({M, K}) * lower;
  const auto b = torch::randn({K, N});
  auto c = torch::full({M, N}, 7.0f);
  gemm::multiply_floats(M, N, K, {a.data_ptr<float>(), K}, {b.data_ptr<float>(), N},
                        {c.data_ptr<float>(), N}, false, {gemm::Band::kLowerA, diagonal});
  EXPECT_LE(max_abs_diff(c, at::mm(a, b)), 1e-5);
  // Its transpose stored as is: A^T(k, i) = 0 for i < k - diagonal + 1.
  const auto at_ = a.t().contiguous();
  const auto b2 = torch::randn({M, N});
  auto c2 = torch::randn({K, N});
  const auto expected2 = c2 + at::mm(at_, b2);
  gemm::multiply_floats(K, N, M, {a.data_ptr<float>(), K, true}, {b2.data_ptr<float>(), N},
                        {c2.data_ptr<float>(), N}, true, {gemm::Band::kUpperA, diagonal});
  EXPECT_LE(max_abs_diff(c2, expected2), 1e-5);
  // Lower result: every wanted C(i, j), j < i + diagonal, is written.
  const auto a3 = torch::randn({M, K});
  auto c3 = torch::full({M, N}, std::nanf(""));
  gemm::multiply_floats(M, N, K, {a3.data_ptr<float>(), K}, {b.data_ptr<float>(), N},
                        {c3.data_ptr<float>(), N}, false, {gemm::Band::kLowerResult, diagonal});
  const auto wanted = torch::ones({M, N}, torch::kBool).tril(diagonal - 1);
  EXPECT_LE(max_abs_diff(c3.masked_select(wanted), at::mm(a3, b).masked_select(wanted)), 1e-5);
}

}  // namespace
}  // namespace pgolf::kernels
