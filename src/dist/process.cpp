#include "dist/process.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>

#include "common/error.h"

extern char** environ;

namespace pgolf {
namespace {

// pipe2 with close-on-exec: the child keeps only the ends dup2'ed onto 0 and 1.
std::pair<int, int> make_pipe() {
  int fds[2];
  PGOLF_CHECK(::pipe2(fds, O_CLOEXEC) == 0, "pipe: {}", std::strerror(errno));
  return {fds[0], fds[1]};
}

}  // namespace

std::optional<std::string> find_program(const std::string& program) {
  if (program.find('/') != std::string::npos) return program;
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    const size_t end = std::min(dirs.find(':', start), dirs.size());
    const std::string dir = end > start ? dirs.substr(start, end - start) : ".";
    const std::string candidate = dir + "/" + program;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return std::nullopt;
}

namespace {

// argv[0] as execve needs it.
std::string resolve_program(const std::string& program) {
  if (auto found = find_program(program)) return *found;
  fail("cannot start '{}': not found on PATH", program);
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

ChildProcess::ChildProcess(const SpawnOptions& options) {
  PGOLF_CHECK(!options.argv.empty(), "cannot start a child process: empty command");
  // A child that dies mid-protocol must become an error message here, not a
  // SIGPIPE that kills pgolf silently.
  if (options.pipe_stdin) std::signal(SIGPIPE, SIG_IGN);
  const std::string program = resolve_program(options.argv[0]);
  std::vector<std::string> argv_strings = options.argv;
  std::vector<char*> argv = c_strings(argv_strings);
  std::vector<std::string> env_strings;
  if (options.env) env_strings = *options.env;
  std::vector<char*> envp = c_strings(env_strings);
  char** const child_env = options.env ? envp.data() : environ;
  const std::string exec_failed = fmt::format("pgolf: cannot execute {}\n", program);
  const std::string stderr_path = options.stderr_path.string();

  int in_fds[2] = {-1, -1}, out_fds[2] = {-1, -1};
  if (options.pipe_stdin) std::tie(in_fds[0], in_fds[1]) = make_pipe();
  if (options.pipe_stdout) std::tie(out_fds[0], out_fds[1]) = make_pipe();
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    if (options.die_with_parent) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (getppid() != parent) _exit(1);  // the parent died before prctl
    }
    if (in_fds[0] >= 0) dup2(in_fds[0], STDIN_FILENO);
    if (out_fds[1] >= 0) dup2(out_fds[1], STDOUT_FILENO);
    if (!stderr_path.empty()) {
      const int fd = open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) dup2(fd, STDERR_FILENO);
    }
    execve(program.c_str(), argv.data(), child_env);
    [[maybe_unused]] const auto n = write(STDERR_FILENO, exec_failed.data(), exec_failed.size());
    _exit(127);
  }
  const int fork_error = errno;
  for (const int fd : {in_fds[0], out_fds[1]}) {
    if (fd >= 0) ::close(fd);
  }
  if (pid < 0) {
    for (const int fd : {in_fds[1], out_fds[0]}) {
      if (fd >= 0) ::close(fd);
    }
    fail("cannot start '{}': fork(): {}", program, std::strerror(fork_error));
  }
  pid_ = pid;
  if (in_fds[1] >= 0) to_child_ = ::fdopen(in_fds[1], "w");
  if (out_fds[0] >= 0) from_child_ = ::fdopen(out_fds[0], "r");
  PGOLF_CHECK((in_fds[1] < 0 || to_child_) && (out_fds[0] < 0 || from_child_), "fdopen: {}",
              std::strerror(errno));
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) wait();
  if (to_child_) std::fclose(to_child_);
  if (from_child_) std::fclose(from_child_);
}

bool ChildProcess::write_line(const std::string& line) {
  if (!to_child_) return false;
  return std::fputs((line + "\n").c_str(), to_child_) >= 0 && std::fflush(to_child_) == 0;
}

std::optional<std::string> ChildProcess::read_line() {
  if (!from_child_) return std::nullopt;
  std::string line;
  for (int c; (c = std::fgetc(from_child_)) != EOF;) {
    if (c == '\n') return line;
    line.push_back(static_cast<char>(c));
  }
  if (line.empty()) return std::nullopt;
  return line;
}

void ChildProcess::signal(int signal) {
  if (pid_ > 0) ::kill(pid_, signal);
}

std::optional<int> ChildProcess::poll() {
  if (pid_ <= 0) return status_;
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == 0 || (r < 0 && errno == EINTR)) return std::nullopt;
  pid_ = -1;
  status_ = r > 0 ? status : (1 << 8);  // could not be waited for: as if it exited 1
  return status_;
}

int ChildProcess::wait() {
  if (to_child_) {
    std::fclose(to_child_);
    to_child_ = nullptr;
  }
  if (pid_ > 0) {
    int status = 0;
    pid_t r;
    while ((r = ::waitpid(pid_, &status, 0)) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    status_ = r > 0 ? status : (1 << 8);
  }
  return exit_code(status_);
}

int exit_code(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return signal_exit_code(WTERMSIG(wait_status));
  return 1;
}

std::string describe_exit(int wait_status) {
  if (WIFEXITED(wait_status)) return fmt::format("exited with code {}", WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) {
    const int signal = WTERMSIG(wait_status);
    return fmt::format("was killed by signal {} ({})", signal, strsignal(signal));
  }
  return fmt::format("ended with status {}", wait_status);
}

std::string self_executable() {
  std::error_code ec;
  const auto resolved = std::filesystem::read_symlink("/proc/self/exe", ec);
  PGOLF_CHECK(!ec, "cannot find the pgolf executable (/proc/self/exe): {}", ec.message());
  return resolved.string();
}

}  // namespace pgolf
