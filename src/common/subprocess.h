// A child process spoken to in lines over its stdin and stdout (the peer
// benchmark's Python harness, perf/peer.h). posix_spawn rather than fork: the
// parent has LibTorch's thread pools running, and fork would copy them half-way.
#pragma once

#include <sys/types.h>

#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace pgolf {

class Subprocess {
 public:
  // Starts argv (argv[0] looked up on PATH). The child's stderr goes to
  // `stderr_path` (truncated), so its warnings do not interleave with ours.
  Subprocess(const std::vector<std::string>& argv, const std::filesystem::path& stderr_path);
  ~Subprocess();  // closes the child's stdin and waits for it
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  // Writes `line` + '\n' and flushes; false if the child has gone.
  bool write_line(const std::string& line);
  // The next stdout line without its '\n'; nullopt at end of output.
  std::optional<std::string> read_line();
  // Closes the child's stdin and returns its exit code (128 + signal if killed).
  int wait();

 private:
  pid_t pid_ = -1;
  FILE* to_child_ = nullptr;
  FILE* from_child_ = nullptr;
  int status_ = -1;
};

}  // namespace pgolf
