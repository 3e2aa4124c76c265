// Child processes: the one way pgolf starts another program. The `--nproc`
// launcher (dist/launcher.h) starts its ranks with it, `pgolf sweep` its
// training runs, the peer benchmark (perf/peer.h) its Python harness, which
// it speaks to in lines over stdin and stdout.
//
// fork + execve, with everything the child needs (argv, environment, the
// program's resolved path, the error message) built before the fork: the
// parent has LibTorch's thread pools running, so between fork and exec the
// child makes only plain system calls.
#pragma once

#include <sys/types.h>

#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace pgolf {

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0]: a path, or a program looked up on PATH
  // "NAME=value" entries; nullopt: this process's environment.
  std::optional<std::vector<std::string>> env;
  bool pipe_stdin = false;            // write_line() feeds the child's stdin
  bool pipe_stdout = false;           // read_line() reads the child's stdout
  std::filesystem::path stderr_path;  // the child's stderr, truncated; empty: ours
  bool die_with_parent = false;       // SIGTERM to the child when pgolf dies, even by SIGKILL
};

class ChildProcess {
 public:
  // Starts the program; a program that cannot be found is a pgolf::Error, one
  // that cannot be executed exits 127 with a line on its stderr.
  explicit ChildProcess(const SpawnOptions& options);
  ~ChildProcess();  // closes the child's stdin and waits for it
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }

  // Writes `line` + '\n' and flushes; false if the child has gone.
  bool write_line(const std::string& line);
  // The next stdout line without its '\n'; nullopt at end of output.
  std::optional<std::string> read_line();

  // Sends `signal` if the child is still running.
  void signal(int signal);
  // Non-blocking: the child's wait status once it has ended, else nullopt.
  std::optional<int> poll();
  // Closes the child's stdin, waits, and returns its exit code (exit_code()).
  int wait();
  // The wait status of the ended child (after poll() or wait() saw it end).
  int wait_status() const { return status_; }

 private:
  pid_t pid_ = -1;
  FILE* to_child_ = nullptr;
  FILE* from_child_ = nullptr;
  int status_ = -1;
};

// The shell's exit code of a process ended by `signal`: 128 + signal.
constexpr int signal_exit_code(int signal) { return 128 + signal; }
// A wait status as an exit code: the child's own, or signal_exit_code if killed.
int exit_code(int wait_status);
// "exited with code 3", "was killed by signal 9 (Killed)".
std::string describe_exit(int wait_status);
// A program as execve needs it: a path as given, a bare name looked up on
// PATH (the usual folders when PATH is unset); nullopt if not found.
std::optional<std::string> find_program(const std::string& program);
// The running pgolf executable's path (/proc/self/exe resolved).
std::string self_executable();

}  // namespace pgolf
