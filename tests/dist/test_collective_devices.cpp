// Every collective reaches the backend on the process group's device (NCCL
// takes only CUDA tensors), whatever device the caller's tensor is on: the
// evaluations reduce CPU float64 sums, which a multi-GPU run must move to its
// GPU. A recording backend on the meta device stands in for NCCL.
#include <gtest/gtest.h>

#include "dist/process_group.h"
#include "eval/sliding.h"
#include "eval/ttt.h"
#include "eval/val_adapt.h"
#include "optim/muon.h"
#include "tests/dist/recording_backend.h"
#include "tests/eval/eval_fixture.h"

namespace pgolf {
namespace {

using testing::RecordingGroup;

TEST(CollectiveDevices, EveryCollectiveCopiesCpuTensorsToTheGroupDevice) {
  RecordingGroup r;
  auto sum = torch::tensor({1.0, 2.0}, torch::kDouble);
  r.group.all_reduce_sum(sum);
  std::vector<torch::Tensor> mixed{torch::ones({3}), torch::ones({2, 2}, torch::kDouble),
                                   torch::ones({4})};
  r.group.all_reduce_mean(mixed);
  r.group.broadcast(mixed);
  EXPECT_EQ(r.group.all_reduce_max(3.0), 0.0);  // the fake's result
  EXPECT_EQ(r.group.all_reduce_max_async(3.0).get(), 0.0);
  EXPECT_EQ(r.calls->size(), 1u + 2u + 2u + 1u + 1u);  // coalesced: one buffer per dtype
  EXPECT_TRUE(r.all_on_group_device());
  // The results came back into the caller's CPU tensors.
  EXPECT_EQ(sum.device(), torch::Device(torch::kCPU));
  EXPECT_EQ(sum.sum().item<double>(), 0.0);
  EXPECT_EQ(mixed[1].sum().item<double>(), 0.0);
}

TEST(CollectiveDevices, MuonsUpdateExchangeRunsOnTheGroupDevice) {
  RecordingGroup r;
  auto w = torch::randn({8, 4}).requires_grad_();
  w.mutable_grad() = torch::randn({8, 4});
  MuonOptions options;
  options.ns_dtype = torch::kFloat;
  Muon muon({w}, options);
  muon.set_process_group(&r.group);
  muon.step(0.01, 0.9);
  EXPECT_TRUE(r.all_on_group_device());
}

TEST(CollectiveDevices, EveryEvaluationReducesOnTheGroupDevice) {
  PGOLF_REQUIRE_SHARED();
  auto f = testing::trained_fixture();
  const auto stream = f.stream.narrow(0, 0, 64 * 16 + 1);

  RecordingGroup val;
  ValResult result = testing::plain_eval(f, 64);
  all_reduce_sums(result, &val.group);
  EXPECT_TRUE(val.all_on_group_device()) << "plain validation";

  RecordingGroup sliding;
  SlidingOptions so;
  so.window_len = 64;
  so.stride = 32;
  so.batch_seqs = 8;
  so.group = &sliding.group;
  evaluate_sliding(f.model, stream, f.luts, so);
  EXPECT_TRUE(sliding.all_on_group_device()) << "sliding windows";

  RecordingGroup ttt;
  TttOptions to;
  to.ttt.mode = TttMode::kSgd;
  to.ttt.chunk_tokens = 256;
  to.ttt.batch_seqs = 4;
  to.ttt.epochs = 1;
  to.ttt.lr = 0.002;
  to.train_seq_len = to.window_len = 64;
  to.stride = 32;
  to.eval_batch_seqs = 8;
  to.ns_dtype = torch::kFloat;
  to.group = &ttt.group;
  score_first_ttt(f.model, stream, f.luts, to);
  EXPECT_TRUE(ttt.all_on_group_device()) << "score-first TTT";

  RecordingGroup adapt;
  TttConfig c;
  c.val_adapt = ValAdapt::kPostquant;
  c.val_adapt_epochs = 1;
  c.allow_non_compliant = true;
  adapt_on_validation(f.model, stream, c, 64, &adapt.group, {});
  EXPECT_TRUE(adapt.all_on_group_device()) << "validation adaptation";
}

}  // namespace
}  // namespace pgolf
