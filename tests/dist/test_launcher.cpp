// The `--nproc` launcher, with /bin/sh as the rank program: torchrun's
// variables per rank, the first failure stopping the others, signals
// forwarded, bad arguments refused. (A real two-rank run of this test binary
// is in test_process_group.cpp.)
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <sstream>
#include <thread>

#include "common/fs.h"
#include "dist/launcher.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

using testing::ScratchDir;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

LaunchOptions shell() {
  LaunchOptions options;
  options.executable = "/bin/sh";
  options.kill_grace = std::chrono::milliseconds(500);
  return options;
}

TEST(LaunchLocalRanks, SetsTorchrunVariablesForEveryRank) {
  ScratchDir dir;
  LaunchOptions options = shell();
  options.master_port = 23456;
  const std::string script =
      "echo \"$RANK $WORLD_SIZE $LOCAL_RANK $LOCAL_WORLD_SIZE $MASTER_ADDR "
      "$MASTER_PORT $1\" > " +
      dir.path().string() + "/rank$RANK";
  setenv("RANK", "7", 1);  // inherited values are replaced
  setenv("MASTER_PORT", "1", 1);
  const int rc = launch_local_ranks(3, {"-c", script, "sh", "extra-arg"}, options);
  EXPECT_EQ(rc, 0);
  for (int rank = 0; rank < 3; ++rank) {
    EXPECT_EQ(read_file(dir / ("rank" + std::to_string(rank))),
              fmt::format("{} 3 {} 3 127.0.0.1 23456 extra-arg\n", rank, rank));
  }

  // No port given: a free one.
  const int rc_free = launch_local_ranks(
      1, {"-c", "echo \"$RANK $MASTER_PORT\" > " + dir.path().string() + "/free"}, shell());
  unsetenv("RANK");
  unsetenv("MASTER_PORT");
  EXPECT_EQ(rc_free, 0);
  int rank = -1, port = -1;
  std::istringstream(read_file(dir / "free")) >> rank >> port;
  EXPECT_EQ(rank, 0);
  EXPECT_GT(port, 1);
}

TEST(LaunchLocalRanks, FailingRankStopsTheOthersAndIsNamed) {
  // Rank 1 fails at once; ranks 0 and 2 would sleep for a minute.
  const std::string script = "if [ \"$RANK\" = 1 ]; then exit 3; fi; exec sleep 60";
  ::testing::internal::CaptureStderr();
  const auto start = Clock::now();
  const int rc = launch_local_ranks(3, {"-c", script}, shell());
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(rc, 3);
  EXPECT_LT(seconds_since(start), 10.0);
  EXPECT_NE(err.find("rank 1 of 3"), std::string::npos) << err;
  EXPECT_NE(err.find("exited with code 3"), std::string::npos) << err;
}

TEST(LaunchLocalRanks, KilledRankReportsItsSignalAndStubbornRanksAreKilled) {
  // Rank 1 ignores SIGTERM (so it needs the SIGKILL after the grace), then rank 0 kills itself.
  ScratchDir dir;
  const std::string ready = dir.path().string() + "/ready";
  const std::string script = "if [ \"$RANK\" = 0 ]; then while [ ! -e " + ready +
                             " ]; do sleep 0.01; done; kill -9 $$; fi; trap '' TERM; touch " +
                             ready + "; exec sleep 60";
  ::testing::internal::CaptureStderr();
  const auto start = Clock::now();
  const int rc = launch_local_ranks(2, {"-c", script}, shell());
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(rc, 128 + SIGKILL);
  EXPECT_GE(seconds_since(start), 0.45);  // the 500 ms grace
  EXPECT_LT(seconds_since(start), 10.0);
  EXPECT_NE(err.find("rank 0 of 2"), std::string::npos) << err;
  EXPECT_NE(err.find("killed by signal 9"), std::string::npos) << err;
}

TEST(LaunchLocalRanks, ForwardsSigterm) {
  ScratchDir dir;
  const std::string script = "touch " + dir.path().string() + "/started$RANK; exec sleep 60";
  std::atomic<bool> done{false};
  std::thread sender([&] {
    // Once both ranks run, the launcher's handler is in place: signal ourselves.
    while (!done && !(std::filesystem::exists(dir / "started0") &&
                      std::filesystem::exists(dir / "started1"))) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!done) kill(getpid(), SIGTERM);
  });
  ::testing::internal::CaptureStderr();
  const auto start = Clock::now();
  const int rc = launch_local_ranks(2, {"-c", script}, shell());
  done = true;
  sender.join();
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(rc, 128 + SIGTERM);
  EXPECT_LT(seconds_since(start), 10.0);
  EXPECT_NE(err.find("stopping 2 rank(s)"), std::string::npos) << err;
}

TEST(LaunchLocalRanks, RejectsBadArguments) {
  EXPECT_PGOLF_ERROR(launch_local_ranks(0, {}, shell()), "--nproc must be at least 1");
  LaunchOptions missing = shell();
  missing.executable = "/no/such/program";
  EXPECT_PGOLF_ERROR(launch_local_ranks(2, {}, missing), "cannot run /no/such/program");
}

}  // namespace
}  // namespace pgolf
