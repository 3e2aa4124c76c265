#include "dist/launcher.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <memory>
#include <optional>
#include <string_view>
#include <thread>

#include "common/error.h"
#include "dist/process.h"
#include "dist/process_group.h"

extern char** environ;

namespace pgolf {
namespace {

volatile std::sig_atomic_t g_pending_signal = 0;

extern "C" void record_signal(int signal) { g_pending_signal = signal; }

// Catches SIGINT / SIGTERM while the ranks run, restoring the old handlers after.
class SignalForwarding {
 public:
  SignalForwarding() {
    g_pending_signal = 0;
    struct sigaction action {};
    action.sa_handler = record_signal;
    action.sa_flags = SA_RESTART;  // other threads' system calls carry on
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &old_int_);
    sigaction(SIGTERM, &action, &old_term_);
  }
  ~SignalForwarding() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  SignalForwarding(const SignalForwarding&) = delete;
  SignalForwarding& operator=(const SignalForwarding&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

// This process's environment without the variables the launcher sets per rank.
std::vector<std::string> inherited_environment() {
  static const char* const kOwned[] = {
      "RANK=", "WORLD_SIZE=", "LOCAL_RANK=", "LOCAL_WORLD_SIZE=", "MASTER_ADDR=", "MASTER_PORT="};
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    const std::string_view entry(*e);
    const bool owned = std::any_of(std::begin(kOwned), std::end(kOwned),
                                   [&](const char* prefix) { return entry.starts_with(prefix); });
    if (!owned) env.emplace_back(entry);
  }
  return env;
}

}  // namespace

int launch_local_ranks(int nproc, const std::vector<std::string>& args,
                       const LaunchOptions& options) {
  PGOLF_CHECK(nproc >= 1, "--nproc must be at least 1, got {}", nproc);
  const std::string executable =
      options.executable.empty() ? self_executable() : options.executable;
  PGOLF_CHECK(access(executable.c_str(), X_OK) == 0, "cannot run {}: {}", executable,
              std::strerror(errno));
  const int port = options.master_port ? options.master_port : free_tcp_port(options.master_addr);
  PGOLF_CHECK(port >= 1 && port <= 65535, "master port {} is out of range", port);

  SpawnOptions spawn;
  spawn.argv = {executable};
  spawn.argv.insert(spawn.argv.end(), args.begin(), args.end());
  spawn.die_with_parent = true;
  const std::vector<std::string> base_env = inherited_environment();

  SignalForwarding forwarding;
  std::vector<std::unique_ptr<ChildProcess>> children;
  auto signal_all = [&](int signal) {
    for (auto& child : children) child->signal(signal);
  };
  for (int rank = 0; rank < nproc; ++rank) {
    spawn.env = base_env;
    for (const auto& [name, value] :
         {std::pair<const char*, std::string>{"RANK", std::to_string(rank)},
          {"WORLD_SIZE", std::to_string(nproc)},
          {"LOCAL_RANK", std::to_string(rank)},
          {"LOCAL_WORLD_SIZE", std::to_string(nproc)},
          {"MASTER_ADDR", options.master_addr},
          {"MASTER_PORT", std::to_string(port)}}) {
      spawn.env->push_back(fmt::format("{}={}", name, value));
    }
    try {
      children.push_back(std::make_unique<ChildProcess>(spawn));
    } catch (const Error& e) {
      signal_all(SIGKILL);
      children.clear();  // reaps them
      fail("cannot start rank {} of {}: {}", rank, nproc, e.what());
    }
  }

  int result = 0;
  int forwarded = 0;
  std::optional<std::chrono::steady_clock::time_point> kill_at;
  int running = nproc;
  while (running > 0) {
    if (const int signal = g_pending_signal) {
      g_pending_signal = 0;
      signal_all(signal);
      if (!forwarded) {
        forwarded = signal;
        std::fprintf(stderr, "pgolf: %s received, stopping %d rank(s)\n", strsignal(signal),
                     running);
        if (result == 0) result = signal_exit_code(signal);
        kill_at = std::chrono::steady_clock::now() + options.kill_grace;
      }
    }
    bool reaped = false;
    for (int rank = 0; rank < nproc; ++rank) {
      ChildProcess& child = *children[static_cast<size_t>(rank)];
      if (!child.running()) continue;
      const pid_t pid = child.pid();
      const std::optional<int> status = child.poll();
      if (!status) continue;
      --running;
      reaped = true;
      if (exit_code(*status) == 0 || result != 0) continue;  // a success, or one we are stopping
      result = exit_code(*status);
      std::fprintf(stderr, "pgolf: rank %d of %d (pid %d) %s; stopping the other ranks\n", rank,
                   nproc, static_cast<int>(pid), describe_exit(*status).c_str());
      signal_all(SIGTERM);
      kill_at = std::chrono::steady_clock::now() + options.kill_grace;
    }
    if (kill_at && std::chrono::steady_clock::now() >= *kill_at) {
      signal_all(SIGKILL);
      kill_at.reset();
    }
    if (running > 0 && !reaped) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::fflush(stderr);
  return result;
}

}  // namespace pgolf
