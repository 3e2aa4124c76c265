#include "artifact/lrzip.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include "common/error.h"
#include "common/fs.h"
#include "dist/process.h"

extern char** environ;

namespace pgolf {
namespace {

namespace fs = std::filesystem;

// A private folder for one call's files, removed with everything in it.
class ScratchFolder {
 public:
  ScratchFolder() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() /
            ("pgolf-lrzip-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::create_directories(path_);
  }
  ~ScratchFolder() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  ScratchFolder(const ScratchFolder&) = delete;
  ScratchFolder& operator=(const ScratchFolder&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Runs lrzip with `args`; its stderr goes into the error message on failure.
void run_lrzip(const std::vector<std::string>& args, const fs::path& folder, const char* what) {
  PGOLF_CHECK(lrzip_available(),
              "COMPRESSOR=pergroup needs the lrzip program (Debian package 'lrzip'), which is "
              "not on PATH");
  SpawnOptions options;
  options.argv = {"lrzip", "-Q"};
  options.argv.insert(options.argv.end(), args.begin(), args.end());
  // A user's lrzip.conf could change the bytes: the defaults, always.
  options.env = std::vector<std::string>{"LRZIP=NOCONFIG"};
  for (char** e = environ; *e; ++e) {
    if (!std::string_view(*e).starts_with("LRZIP=")) options.env->emplace_back(*e);
  }
  options.stderr_path = folder / "stderr.txt";
  ChildProcess child(options);
  const int code = child.wait();
  if (code != 0) {
    std::string message;
    try {
      message = read_file(options.stderr_path);
    } catch (const Error&) {
    }
    fail("lrzip could not {} (exit code {}): {}", what, code, message);
  }
}

}  // namespace

bool lrzip_available() { return find_program("lrzip").has_value(); }

std::string lrzip_compress(std::string_view data, int level) {
  PGOLF_CHECK(level >= 1 && level <= 9, "lrzip level {} outside [1, 9]", level);
  const ScratchFolder folder;
  const fs::path in = folder.path() / "group.bin";
  const fs::path out = folder.path() / "group.bin.lrz";
  write_file_atomic(in, data);
  run_lrzip({"-z", "-L", std::to_string(level), "-p", "1", "-f", "-o", out.string(), in.string()},
            folder.path(), "compress");
  return read_file(out);
}

std::string lrzip_decompress(std::string_view data, uint64_t expected_size) {
  const ScratchFolder folder;
  const fs::path in = folder.path() / "group.lrz";
  const fs::path out = folder.path() / "group.bin";
  write_file_atomic(in, data);
  run_lrzip({"-d", "-f", "-o", out.string(), in.string()}, folder.path(),
            "decompress a group (corrupt or truncated stream)");
  std::string bytes = read_file(out);
  PGOLF_CHECK(bytes.size() == expected_size, "lrzip: a group decompressed to {} bytes, expected {}",
              bytes.size(), expected_size);
  return bytes;
}

}  // namespace pgolf
