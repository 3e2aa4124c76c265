// The process group: torchrun's environment, the single-process no-op group,
// rendezvous timeouts, and a real 2-rank Gloo run: the launcher starts this
// test binary twice with PGOLF_DIST_WORKER=1 and a filter selecting one
// DistributedWorker test, which is skipped in ordinary runs.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <map>

#include "dist/launcher.h"
#include "dist/process_group.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

using testing::ScratchDir;
using Vars = std::map<std::string, std::string>;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// ---------------------------------------------------------------------------
// torchrun's environment.

TEST(DistEnv, ReadsTorchrunVariablesWithDefaults) {
  DistEnv env = dist_env_from({});
  EXPECT_EQ(env.rank, 0);
  EXPECT_EQ(env.world_size, 1);
  EXPECT_EQ(env.local_rank, 0);
  EXPECT_FALSE(env.active());
  // Stray MASTER_* without RANK / WORLD_SIZE are ignored.
  EXPECT_FALSE(dist_env_from({{"MASTER_PORT", "oops"}}).active());
  EXPECT_FALSE(dist_env_from({{"RANK", "0"}, {"WORLD_SIZE", "1"}}).active());

  env = dist_env_from({{"RANK", "5"},
                       {"WORLD_SIZE", "8"},
                       {"LOCAL_RANK", "1"},
                       {"MASTER_ADDR", "10.0.0.7"},
                       {"MASTER_PORT", "12345"}});
  EXPECT_EQ(env.rank, 5);
  EXPECT_EQ(env.world_size, 8);
  EXPECT_EQ(env.local_rank, 1);
  EXPECT_EQ(env.master_addr, "10.0.0.7");
  EXPECT_EQ(env.master_port, 12345);
  EXPECT_TRUE(env.active());

  EXPECT_EQ(env.local_world_size, 8);  // no LOCAL_WORLD_SIZE: all ranks local
  env = dist_env_from(
      {{"RANK", "5"}, {"WORLD_SIZE", "16"}, {"LOCAL_RANK", "5"}, {"LOCAL_WORLD_SIZE", "8"}});
  EXPECT_EQ(env.local_world_size, 8);
  EXPECT_PGOLF_ERROR(
      dist_env_from(
          {{"RANK", "5"}, {"WORLD_SIZE", "16"}, {"LOCAL_RANK", "5"}, {"LOCAL_WORLD_SIZE", "4"}}),
      "LOCAL_RANK=5 must be below LOCAL_WORLD_SIZE=4");

  env = dist_env_from({{"RANK", "1"}, {"WORLD_SIZE", "2"}});
  EXPECT_EQ(env.local_rank, 1);  // single node: LOCAL_RANK = RANK
  EXPECT_EQ(env.master_addr, "127.0.0.1");
  EXPECT_EQ(env.master_port, 29500);
}

TEST(DistEnv, RejectsMalformedValues) {
  EXPECT_PGOLF_ERROR(dist_env_from({{"RANK", "1"}}), "WORLD_SIZE is not");
  EXPECT_PGOLF_ERROR(dist_env_from({{"WORLD_SIZE", "2"}}), "RANK is not");
  EXPECT_PGOLF_ERROR(dist_env_from({{"RANK", "abc"}, {"WORLD_SIZE", "2"}}),
                     "RANK must be an integer, got 'abc'");
  EXPECT_PGOLF_ERROR(dist_env_from({{"RANK", "1x"}, {"WORLD_SIZE", "2"}}), "'1x'");
  EXPECT_PGOLF_ERROR(dist_env_from({{"RANK", ""}, {"WORLD_SIZE", "2"}}), "RANK must be");
  EXPECT_PGOLF_ERROR(dist_env_from({{"RANK", " 1"}, {"WORLD_SIZE", "2"}}), "integer");
  EXPECT_PGOLF_ERROR(dist_env_from({{"RANK", "0"}, {"WORLD_SIZE", "2.0"}}), "WORLD_SIZE must be");
  EXPECT_PGOLF_ERROR(dist_env_from({{"RANK", "2"}, {"WORLD_SIZE", "2"}}),
                     "RANK=2 must be below WORLD_SIZE=2");
  EXPECT_PGOLF_ERROR(dist_env_from({{"RANK", "-1"}, {"WORLD_SIZE", "2"}}), "RANK=-1 is out of");
  EXPECT_PGOLF_ERROR(dist_env_from({{"RANK", "0"}, {"WORLD_SIZE", "0"}}), "WORLD_SIZE=0");
  EXPECT_PGOLF_ERROR(dist_env_from({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "2"}}),
                     "LOCAL_RANK=2 must be below");
  EXPECT_PGOLF_ERROR(dist_env_from({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "0"}}),
                     "MASTER_PORT=0 is out of range");
  EXPECT_PGOLF_ERROR(dist_env_from({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "70000"}}),
                     "MASTER_PORT");
  EXPECT_PGOLF_ERROR(dist_env_from({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "http"}}),
                     "MASTER_PORT must be an integer");
  EXPECT_PGOLF_ERROR(dist_env_from({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", ""}}),
                     "MASTER_ADDR is set but empty");
}

// ---------------------------------------------------------------------------
// The process group in one process.

void expect_no_op(ProcessGroup& group) {
  EXPECT_EQ(group.rank(), 0);
  EXPECT_EQ(group.world_size(), 1);
  EXPECT_FALSE(group.active());
  EXPECT_TRUE(group.master());
  EXPECT_EQ(group.backend(), "none");
  auto a = torch::arange(6, torch::kFloat32);
  auto b = torch::ones({2}, torch::kInt64);
  std::vector<torch::Tensor> tensors{a, b, torch::Tensor()};  // not even checked
  group.all_reduce_mean(tensors);
  group.broadcast(tensors, 0);
  group.all_reduce_sum(b);
  group.barrier();
  EXPECT_TRUE(torch::equal(a, torch::arange(6, torch::kFloat32)));
  EXPECT_TRUE(torch::equal(b, torch::ones({2}, torch::kInt64)));
  EXPECT_EQ(group.all_reduce_max(-2.5), -2.5);
}

TEST(ProcessGroup, SingleProcessIsANoOp) {
  ProcessGroup plain;
  expect_no_op(plain);
  ProcessGroup from_env(dist_env_from({}), torch::kCPU);
  expect_no_op(from_env);
  ProcessGroup moved = std::move(from_env);
  expect_no_op(moved);
}

TEST(ProcessGroup, MissingPeerOrMasterTimesOutClearly) {
  DistOptions options;
  options.connect_timeout = std::chrono::milliseconds(500);
  DistEnv env;
  env.world_size = 2;
  env.master_port = free_tcp_port();
  EXPECT_GT(env.master_port, 0);
  EXPECT_LE(env.master_port, 65535);

  // Rank 0 hosts the store, but rank 1 never comes.
  env.rank = 0;
  auto start = Clock::now();
  EXPECT_PGOLF_ERROR((void)ProcessGroup(env, torch::kCPU, options),
                     "rank 0 of 2: the rendezvous at MASTER_ADDR:MASTER_PORT=127.0.0.1:");
  EXPECT_LT(seconds_since(start), 10.0);

  // Rank 1 finds nobody listening.
  env.rank = 1;
  start = Clock::now();
  EXPECT_PGOLF_ERROR((void)ProcessGroup(env, torch::kCPU, options),
                     "rank 1 of 2: the rendezvous at");
  EXPECT_LT(seconds_since(start), 10.0);

  EXPECT_PGOLF_ERROR(free_tcp_port("no.such.host.invalid"), "cannot resolve");
}

// ---------------------------------------------------------------------------
// Two real ranks over Gloo: this binary, started by the launcher.

constexpr const char* kWorkerVar = "PGOLF_DIST_WORKER";

int run_workers(const std::string& test) {
  LaunchOptions options;  // /proc/self/exe: this test binary
  options.kill_grace = std::chrono::milliseconds(1000);
  setenv(kWorkerVar, "1", 1);
  const int rc = launch_local_ranks(2, {"--gtest_filter=DistributedWorker." + test}, options);
  unsetenv(kWorkerVar);
  return rc;
}

TEST(ProcessGroup, TwoGlooRanksAgreeAndALostPeerIsAnError) {
  const auto start = Clock::now();
  EXPECT_EQ(run_workers("TwoRanks"), 0) << "a rank failed: see its output above";
  EXPECT_LT(seconds_since(start), 30.0);
}

DistOptions worker_options() {
  DistOptions options;
  options.connect_timeout = std::chrono::seconds(20);
  options.op_timeout = std::chrono::seconds(20);
  return options;
}

TEST(DistributedWorker, TwoRanks) {
  if (!std::getenv(kWorkerVar)) GTEST_SKIP() << "one rank of ProcessGroup.TwoGlooRanks*";
  const DistEnv env = dist_env_from_environment();
  ASSERT_EQ(env.world_size, 2);
  EXPECT_EQ(env.local_rank, env.rank);
  EXPECT_EQ(env.master_addr, "127.0.0.1");
  ProcessGroup group(env, torch::kCPU, worker_options());
  ASSERT_EQ(group.world_size(), 2);
  ASSERT_EQ(group.rank(), env.rank);
  EXPECT_EQ(group.backend(), "gloo");
  const double r = static_cast<double>(group.rank());

  // Mean over mixed dtypes, with a non-contiguous view written in place.
  auto a = torch::arange(6, torch::kFloat32).reshape({2, 3}) + (r + 1);  // mean: arange + 1.5
  auto b = torch::full({3}, 4 * r, torch::kFloat64).requires_grad_();    // mean: 2, alone
  auto storage = torch::full({3, 2}, r, torch::kFloat32);
  auto c = storage.t();                                                // mean: 0.5
  auto d = torch::full({4}, 2 * r, torch::kBFloat16);                  // mean: 1
  auto e = torch::tensor({-1.0f, 3.0f}) * (r + 1);                     // mean: -1.5, 4.5
  auto p = torch::full({2}, 3 * r, torch::kFloat32).requires_grad_();  // a parameter: 1.5
  std::vector<torch::Tensor> tensors{a, b, c, d, e, p};
  group.all_reduce_mean(tensors);
  EXPECT_TRUE(torch::equal(a, torch::arange(6, torch::kFloat32).reshape({2, 3}) + 1.5));
  EXPECT_TRUE(torch::equal(b, torch::full({3}, 2.0, torch::kFloat64)));
  EXPECT_TRUE(torch::equal(storage, torch::full({3, 2}, 0.5, torch::kFloat32)));
  EXPECT_TRUE(torch::equal(d, torch::full({4}, 1.0, torch::kBFloat16)));
  EXPECT_TRUE(torch::equal(e, torch::tensor({-1.5f, 4.5f})));
  EXPECT_TRUE(torch::equal(p, torch::full({2}, 1.5, torch::kFloat32)));
  EXPECT_TRUE(tensors[2].is_same(c));  // the caller's tensors, updated in place

  // Sums, in place (also through a non-contiguous view).
  auto s = torch::full({3}, static_cast<int64_t>(r) + 1, torch::kInt64);
  group.all_reduce_sum(s);
  EXPECT_TRUE(torch::equal(s, torch::full({3}, 3, torch::kInt64)));
  auto base = torch::full({2, 2}, 0.25 * (r + 1), torch::kFloat32);
  auto column = base.select(1, 0);
  group.all_reduce_sum(column);
  const float other = 0.25f * static_cast<float>(r + 1);  // the column not reduced
  EXPECT_TRUE(torch::equal(base, torch::tensor({{0.75f, other}, {0.75f, other}})));

  // The maximum of a double.
  EXPECT_EQ(group.all_reduce_max(r == 0 ? 7.5 : -2.0), 7.5);
  EXPECT_EQ(group.all_reduce_max(100.0 * r + 0.125), 100.125);

  // Broadcast from either root.
  for (int64_t root : {0, 1}) {
    auto x = torch::full({4}, r, torch::kFloat32);
    auto y = torch::full({2}, 10 * static_cast<int64_t>(r), torch::kInt64);
    auto z = torch::full({2, 2}, r + 0.5, torch::kFloat32).requires_grad_();
    std::vector<torch::Tensor> list{x, y, z};
    group.broadcast(list, root);
    EXPECT_TRUE(torch::equal(x, torch::full({4}, static_cast<double>(root), torch::kFloat32)));
    EXPECT_TRUE(torch::equal(y, torch::full({2}, 10 * root, torch::kInt64)));
    EXPECT_TRUE(torch::equal(z, torch::full({2, 2}, root + 0.5, torch::kFloat32)));
  }

  // Errors found before any collective (so on every rank alike).
  std::vector<torch::Tensor> ints{torch::ones({2}, torch::kInt64)};
  EXPECT_PGOLF_ERROR(group.all_reduce_mean(ints), "not floating point");
  std::vector<torch::Tensor> undefined{torch::Tensor()};
  EXPECT_PGOLF_ERROR(group.all_reduce_mean(undefined), "tensor 0 is undefined");
  EXPECT_PGOLF_ERROR(group.broadcast(tensors, 2), "root 2 is outside world size 2");

  // Rank 1 leaves without a word: rank 0's next collective fails at once.
  group.barrier();
  if (group.rank() == 1) std::_Exit(HasFailure() ? 1 : 0);  // keeps its verdict, says no more
  const auto start = Clock::now();
  auto t = torch::ones({8});
  EXPECT_PGOLF_ERROR(group.all_reduce_sum(t), "all_reduce_sum failed on rank 0 of 2 (gloo)");
  EXPECT_LT(seconds_since(start), 10.0);  // well before the 20 s collective timeout
}

}  // namespace
}  // namespace pgolf
