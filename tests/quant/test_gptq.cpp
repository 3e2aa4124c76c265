// Tests for quant/gptq and quant/hessian: both GPTQ variants reproduce the
// seeds' functions code for code on a small matrix (block size 4, so block
// boundaries and the cross-block update are exercised), dead columns, and
// GPTQ beats plain rounding in the Hessian-weighted error it minimises.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <vector>

#include "quant/clip_search.h"
#include "quant/gptq.h"
#include "quant/hessian.h"
#include "tests/quant/single_thread.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

class QuantGptqTest : public testing::SingleThreadTest {};
class QuantHessianTest : public testing::SingleThreadTest {};

// Correlated calibration inputs X [12, 10] and a weight W [6, 10] (values
// from PyTorch, printed to 9 digits so they are exact fp32).
torch::Tensor inputs() {
  return torch::tensor({-1.47095025f,  2.44163418f,    1.65523994f,   -2.11017799f,  -0.514195919f,
                        -1.24554682f,  -1.24714899f,   5.59849167f,   1.35555899f,   -1.52576399f,
                        3.73688149f,   0.534129262f,   -2.74767351f,  0.798188508f,  0.795938194f,
                        -6.05020523f,  -0.523103416f,  -4.68928576f,  -0.927465498f, 1.13583946f,
                        1.53928685f,   -1.81386006f,   -1.74258232f,  0.522562921f,  0.374089748f,
                        1.48451078f,   -0.0520766377f, -0.665095091f, -1.32856154f,  1.19495273f,
                        -3.6862061f,   -1.71661496f,   3.4183712f,    1.08797574f,   -1.92513299f,
                        3.79707122f,   1.42708373f,    2.59020209f,   2.72373104f,   -0.176052362f,
                        -1.98280585f,  -4.00985003f,   0.733713627f,  0.353188992f,  -0.500227571f,
                        2.79608989f,   1.03962374f,    2.38280153f,   3.25488472f,   0.299519777f,
                        -1.21941006f,  3.15636301f,    3.62516594f,   0.323050678f,  0.418942451f,
                        0.0152087212f, -1.29596567f,   2.00840116f,   0.396482825f,  0.296524286f,
                        2.85912466f,   0.0969074667f,  -1.38354456f,  -1.48801589f,  -1.45975482f,
                        -2.62977719f,  0.520602107f,   0.176252887f,  -2.94002724f,  -1.4015553f,
                        -3.83944869f,  -0.0569245219f, 6.81160975f,   4.41699171f,   0.688319206f,
                        3.01698208f,   -0.107831791f,  -2.00758934f,  5.44527292f,   2.60978174f,
                        -0.50757581f,  2.46542358f,    -5.01358414f,  -1.7225014f,   0.811799705f,
                        -1.54603219f,  -0.117391095f,  -5.16223764f,  1.10479379f,   -2.69881415f,
                        -4.18261385f,  1.42709935f,    0.31464088f,   4.6231122f,    1.41793299f,
                        2.12317085f,   -0.603209317f,  -5.62894392f,  3.48150349f,   -3.64231849f,
                        1.57261014f,   -0.604163945f,  -0.611625493f, -2.33901024f,  -1.00081134f,
                        -0.567104936f, -0.519234955f,  7.11270761f,   -3.88542533f,  -0.966237724f,
                        1.22317016f,   -2.34076452f,   3.77082205f,   -0.589832604f, -0.565581858f,
                        0.799454808f,  1.17346001f,    3.64747977f,   -0.907962561f, 3.46829391f})
      .reshape({12, 10});
}

torch::Tensor weight() {
  return torch::tensor(
             {0.395503879f,  -0.9349733f,     -0.266316414f,  0.400122225f,   1.48621571f,
              -0.952175379f, 0.0147541026f,   -0.809664547f,  -0.170955703f,  -0.324154049f,
              -0.317630857f, -0.00338964211f, -0.157276258f,  0.750354052f,   -0.871535003f,
              0.0260282401f, -0.113365084f,   -1.58073545f,   -0.0845789909f, 1.09102011f,
              -0.824572444f, 1.42880988f,     0.950620055f,   -0.964669347f,  -0.481713325f,
              -0.986823261f, -1.06850874f,    -0.0677306876f, 1.11786306f,    -1.58648252f,
              0.461766362f,  -0.486203492f,   -0.684412479f,  -0.188706458f,  0.0728827789f,
              0.0947382301f, -0.316097677f,   -0.253533334f,  -0.514750957f,  1.83781052f,
              1.30253875f,   -0.202324972f,   -0.0934791341f, -0.94069618f,   0.203324899f,
              -1.27849936f,  0.344695687f,    1.29218137f,    0.196525171f,   -0.904955983f,
              -1.58247828f,  0.636473358f,    -0.995949149f,  0.641995251f,   0.538004637f,
              0.303676009f,  0.0644948557f,   -1.25699604f,   -0.859579384f,  0.641953588f})
      .reshape({6, 10});
}

std::vector<int> codes_of(const torch::Tensor& q) {
  const torch::Tensor flat = q.flatten().to(torch::kInt32).contiguous();
  return {flat.data_ptr<int>(), flat.data_ptr<int>() + flat.numel()};
}

std::vector<float> values_of(const torch::Tensor& s) {
  const torch::Tensor flat = s.flatten().to(torch::kFloat32).contiguous();
  return {flat.data_ptr<float>(), flat.data_ptr<float>() + flat.numel()};
}

// #1406's Hessian: two calibration batches of 6 rows.
torch::Tensor hessian_pr1406() {
  HessianAccumulator acc(10, HessianAccumulator::pr1406());
  acc.add(inputs().slice(0, 0, 6));
  acc.add(inputs().slice(0, 6, 12));
  return acc.hessian();
}

TEST_F(QuantHessianTest, PerBatchMeanAndDampingByHand) {
  // X1 = [[1,2],[3,4]], X2 = [[0,1],[1,0]]: X1'X1 = [[10,14],[14,20]],
  // X2'X2 = I; mean over 2 batches = [[5.5,7],[7,10.5]]; mean diag 8, so the
  // damping adds 0.005 * 8 = 0.04.
  HessianAccumulator acc(2);
  acc.add(torch::tensor({1.f, 2.f, 3.f, 4.f}).reshape({2, 2}));
  acc.add(torch::tensor({0.f, 1.f, 1.f, 0.f}).reshape({1, 2, 2}));  // [..., C] is flattened
  EXPECT_EQ(acc.batches(), 2);
  EXPECT_EQ(acc.rows(), 4);
  EXPECT_EQ(values_of(acc.hessian()), (std::vector<float>{5.54f, 7.f, 7.f, 10.54f}));
}

TEST_F(QuantHessianTest, PerRowMeanWithoutDamping) {
  HessianAccumulator acc(2, HessianAccumulator::pr562());
  acc.add(torch::tensor({1.f, 2.f, 3.f, 4.f}).reshape({2, 2}));
  acc.add(torch::tensor({0.f, 1.f, 1.f, 0.f}).reshape({2, 2}).to(torch::kBFloat16));
  EXPECT_EQ(values_of(acc.hessian()), (std::vector<float>{2.75f, 3.5f, 3.5f, 5.25f}));
}

TEST_F(QuantHessianTest, DeadLayerGetsTheFloorDampingAndErrorsAreClear) {
  HessianAccumulator acc(3);
  acc.add(torch::zeros({5, 3}));
  const float floor = values_of(acc.hessian())[0];
  EXPECT_FLOAT_EQ(floor, 0.005f * 1e-6f);
  EXPECT_PGOLF_ERROR(acc.add(torch::zeros({5, 4})), "do not have 3 columns");
  EXPECT_PGOLF_ERROR(HessianAccumulator(3).hessian(), "no calibration batches");
}

TEST_F(QuantHessianTest, FindHessianByExactNameOrSubstring) {
  const Hessians hessians = {{"blocks.1.attn.c_q.weight", torch::eye(4)},
                             {"blocks.1.mlp.fc.weight", torch::eye(8)}};
  EXPECT_NE(find_hessian(hessians, "blocks.1.attn.c_q.weight", 4, HessianMatch::kExact), nullptr);
  EXPECT_EQ(find_hessian(hessians, "blocks.11.attn.c_q.weight", 4, HessianMatch::kExact), nullptr);
  EXPECT_PGOLF_ERROR(find_hessian(hessians, "blocks.1.mlp.fc.weight", 4, HessianMatch::kExact),
                     "has 4 columns");
  // #562: module name + ".weight" inside the tensor name, and the columns agree.
  EXPECT_EQ(find_hessian(hessians, "model.blocks.1.mlp.fc.weight", 8, HessianMatch::kSubstring),
            &hessians[1].second);
  EXPECT_EQ(find_hessian(hessians, "model.blocks.1.mlp.fc.weight", 4, HessianMatch::kSubstring),
            nullptr);
}

TEST_F(QuantGptqTest, Pr1406MatchesReference) {
  const torch::Tensor h = hessian_pr1406();
  EXPECT_EQ(values_of(h.diagonal()),
            (std::vector<float>{41.2609177f, 26.4388809f, 63.6063728f, 29.5198212f, 6.07311106f,
                                43.4268608f, 4.65815592f, 98.4330521f, 45.2854347f, 23.9617348f}));
  EXPECT_EQ(h[0][1].item<float>(), -2.24798965f);
  const IntQuantized q =
      gptq_quantize_pr1406(weight(), h, int6_pr1406(), clip_candidates_pr1406(), /*block_size=*/4);
  EXPECT_EQ(values_of(q.scale), (std::vector<float>{0.0479431152f, 0.050994873f, 0.0511779785f,
                                                    0.0592956543f, 0.0420227051f, 0.0510559082f}));
  EXPECT_EQ(
      codes_of(q.q),
      (std::vector<int>{9,   -20, -5,  8,  31,  -20, 0,  -17, -3,  -7,  -7,  0,   -3,  15,  -17,
                        0,   -2,  -31, -2, 22,  -16, 29, 18,  -18, -10, -19, -20, -1,  22,  -30,
                        7,   -8,  -12, -3, 2,   1,   -4, -4,  -9,  31,  31,  -5,  -2,  -23, 6,
                        -30, 8,   31,  5,  -22, -31, 12, -19, 12,  11,  6,   1,   -25, -17, 12}));
}

TEST_F(QuantGptqTest, Pr1406DeadColumnsAreZeroed) {
  torch::Tensor x = inputs().clone();
  x.select(1, 7).zero_();
  const torch::Tensor h = torch::matmul(x.t(), x) / 12;  // raw: column 7 is dead
  const IntQuantized q =
      gptq_quantize_pr1406(weight(), h, int6_pr1406(), clip_candidates_pr1406(), 4);
  EXPECT_TRUE(q.q.select(1, 7).eq(0).all().item<bool>());
  EXPECT_EQ(
      codes_of(q.q),
      (std::vector<int>{8,   -19, -6,  9,  30,  -20, 0,  0,   -4,  -6, -7,  0,   -3, 15,  -17,
                        0,   -2,  0,   -2, 22,  -15, 28, 19,  -19, -9, -19, -21, 0,  22,  -31,
                        7,   -8,  -12, -3, 1,   1,   -4, 0,   -9,  31, 31,  -5,  -2, -23, 5,
                        -30, 8,   0,   5,  -22, -31, 13, -20, 13,  10, 6,   2,   0,  -17, 13}));
}

TEST_F(QuantGptqTest, Pr562MatchesReference) {
  HessianAccumulator acc(10, HessianAccumulator::pr562());
  acc.add(inputs().slice(0, 0, 6));
  acc.add(inputs().slice(0, 6, 12));
  const torch::Tensor h = acc.hessian();
  const IntQuantized q6 = gptq_quantize_pr562(weight(), h, int6_pr461(), /*block_size=*/4);
  EXPECT_EQ(values_of(q6.scale), (std::vector<float>{0.0477905273f, 0.050994873f, 0.0511169434f,
                                                     0.0591125488f, 0.0420227051f, 0.0509643555f}));
  EXPECT_EQ(
      codes_of(q6.q),
      (std::vector<int>{8,   -20, -5,  8,  31,  -20, 0,  -17, -4,  -7, -6,  0,   -3,  15,  -17,
                        1,   -2,  -31, -1, 21,  -16, 28, 19,  -19, -9, -19, -21, -2,  22,  -31,
                        8,   -8,  -12, -3, 1,   2,   -5, -4,  -8,  31, 31,  -5,  -2,  -23, 5,
                        -30, 8,   31,  5,  -22, -31, 13, -20, 13,  10, 6,   1,   -25, -17, 13}));
  const IntQuantized q5 = gptq_quantize_pr562(weight(), h, int5_pr461(), 4);
  EXPECT_EQ(values_of(q5.scale), (std::vector<float>{0.0990600586f, 0.105407715f, 0.105651855f,
                                                     0.121826172f, 0.0868530273f, 0.10546875f}));
  EXPECT_EQ(codes_of(q5.q),
            (std::vector<int>{4,   -9, -3,  4,  15,  -10, 0,  -8, -2, -3, -3, 0,   -1,  7,   -8,
                              0,   -1, -15, -1, 10,  -7,  14, 9,  -9, -5, -9, -10, -1,  11,  -15,
                              4,   -4, -5,  -2, 0,   1,   -3, -3, -4, 15, 15, -2,  -1,  -11, 2,
                              -15, 4,  15,  2,  -10, -15, 6,  -9, 6,  5,  3,  1,   -12, -8,  6}));
}

TEST_F(QuantGptqTest, BeatsPlainRoundingInHessianWeightedError) {
  torch::manual_seed(7);
  const int64_t cols = 300;  // two full blocks of 128 and a partial one
  // Inputs with strongly correlated features (a low-rank mix plus noise).
  const torch::Tensor mix =
      torch::randn({cols, cols}) / 20 + torch::randn({cols, 8}).matmul(torch::randn({8, cols}));
  HessianAccumulator acc(cols);
  for (int b = 0; b < 4; ++b) acc.add(torch::randn({256, cols}).matmul(mix));
  const torch::Tensor h = acc.hessian();
  const torch::Tensor w = torch::randn({24, cols}) * 0.05;

  const IntQuantized rtn = clip_search_per_matrix(w, int6_pr1406(), clip_candidates_pr1406());
  const IntQuantized gptq = gptq_quantize_pr1406(w, h);
  const double e_rtn = hessian_weighted_error(w, rtn, h);
  const double e_gptq = hessian_weighted_error(w, gptq, h);
  EXPECT_LT(e_gptq, 0.8 * e_rtn) << "gptq " << e_gptq << " rounding " << e_rtn;
  EXPECT_LE(gptq.q.abs().max().item<int>(), 31);

  // #562 keeps the round-to-nearest scales, so the comparison is like for like.
  HessianAccumulator acc562(cols, HessianAccumulator::pr562());
  acc562.add(torch::randn({1024, cols}).matmul(mix));
  const torch::Tensor h562 = acc562.hessian();
  for (const IntGrid& grid : {int6_pr461(), int5_pr461()}) {
    const IntQuantized rtn562 =
        clip_search_per_row(w, grid, clip_candidates_pr1406(), ClipQuantile::kInterpolated);
    const IntQuantized gptq562 = gptq_quantize_pr562(w, h562, grid);
    EXPECT_TRUE(torch::equal(gptq562.scale, rtn562.scale));
    EXPECT_LT(hessian_weighted_error(w, gptq562, h562),
              0.8 * hessian_weighted_error(w, rtn562, h562));
    EXPECT_GE(gptq562.q.min().item<int>(), grid.qmin);
    EXPECT_LE(gptq562.q.max().item<int>(), grid.qmax);
  }
}

TEST_F(QuantGptqTest, HessianProblems) {
  const torch::Tensor w = weight();
  EXPECT_PGOLF_ERROR(gptq_quantize_pr1406(w, torch::eye(9)), "does not fit a weight with 10");
  EXPECT_PGOLF_ERROR(gptq_quantize_pr1406(w, -torch::eye(10)), "not positive definite");
  // #562 falls back to the inverse diagonal instead (here: plain rounding).
  const IntQuantized q = gptq_quantize_pr562(w, -torch::eye(10), int6_pr461());
  const IntQuantized rtn =
      clip_search_per_row(w, int6_pr461(), clip_candidates_pr1406(), ClipQuantile::kInterpolated);
  EXPECT_TRUE(torch::equal(q.q, rtn.q));
}

}  // namespace
}  // namespace pgolf
