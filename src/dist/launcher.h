// `pgolf train|eval --nproc N`: this program run once per local rank with
// torchrun's environment, as `torchrun --standalone --nproc_per_node=N` would.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace pgolf {

struct LaunchOptions {
  std::string executable;  // empty: this pgolf executable
  std::string master_addr = "127.0.0.1";
  int master_port = 0;  // 0: free_tcp_port(master_addr)
  // After the first failure, how long the other ranks get between SIGTERM and SIGKILL.
  std::chrono::milliseconds kill_grace{std::chrono::seconds(5)};
};

// Runs `nproc` copies of options.executable with `args` (argv after argv[0],
// the --nproc flag already removed) and torchrun's RANK, WORLD_SIZE,
// LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT set, and waits for
// all. SIGINT / SIGTERM received meanwhile are forwarded to them; a launcher
// killed with -9 takes its ranks along. Returns 0 if every rank exits 0.
// Otherwise the first rank to fail decides: the others are terminated, one
// line naming that rank and how it ended goes to stderr, and the result is its
// exit code (128 + signal if it was killed).
int launch_local_ranks(int nproc, const std::vector<std::string>& args,
                       const LaunchOptions& options = {});

}  // namespace pgolf
