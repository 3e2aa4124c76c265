#include "common/subprocess.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "common/error.h"

extern char** environ;

namespace pgolf {
namespace {

// pipe2 with close-on-exec: the child gets only the ends dup2'ed onto 0 and 1.
std::pair<int, int> make_pipe() {
  int fds[2];
  PGOLF_CHECK(::pipe2(fds, O_CLOEXEC) == 0, "pipe: {}", std::strerror(errno));
  return {fds[0], fds[1]};
}

}  // namespace

Subprocess::Subprocess(const std::vector<std::string>& argv,
                       const std::filesystem::path& stderr_path) {
  PGOLF_CHECK(!argv.empty(), "Subprocess: empty command");
  // A child that dies mid-protocol must turn into an error message here, not
  // a SIGPIPE that kills pgolf silently.
  std::signal(SIGPIPE, SIG_IGN);
  const auto [in_read, in_write] = make_pipe();
  const auto [out_read, out_write] = make_pipe();
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_read, STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out_write, STDOUT_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderr_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const int rc = posix_spawnp(&pid_, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(in_read);
  ::close(out_write);
  if (rc != 0) {
    ::close(in_write);
    ::close(out_read);
    fail("cannot start '{}': {}", argv[0], std::strerror(rc));
  }
  to_child_ = ::fdopen(in_write, "w");
  from_child_ = ::fdopen(out_read, "r");
  PGOLF_CHECK(to_child_ && from_child_, "fdopen: {}", std::strerror(errno));
}

Subprocess::~Subprocess() {
  if (pid_ > 0) wait();
  if (from_child_) std::fclose(from_child_);
}

bool Subprocess::write_line(const std::string& line) {
  if (!to_child_) return false;
  return std::fputs((line + "\n").c_str(), to_child_) >= 0 && std::fflush(to_child_) == 0;
}

std::optional<std::string> Subprocess::read_line() {
  std::string line;
  for (int c; (c = std::fgetc(from_child_)) != EOF;) {
    if (c == '\n') return line;
    line.push_back(static_cast<char>(c));
  }
  if (line.empty()) return std::nullopt;
  return line;
}

int Subprocess::wait() {
  if (to_child_) {
    std::fclose(to_child_);
    to_child_ = nullptr;
  }
  if (pid_ > 0) {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  return status_;
}

}  // namespace pgolf
