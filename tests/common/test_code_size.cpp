// The counted code (common/code_size.h, tools/code_bundle.cpp): the build's
// bundle is what code_size() counts, holds exactly code_files() and the
// checkout's bytes, is closed under the project's #includes, leaves out what
// the evaluator does not need, and comes out byte for byte the same each run.
#include <brotli/decode.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/code_size.h"
#include "common/format.h"
#include "common/fs.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

namespace fs = std::filesystem;

struct Member {
  std::string path;
  std::string header;  // the 512-byte ustar header
  std::string data;
};

// The bundle's archive: lrzip -d (the build's lrzip) or brotli.
std::string unpack_bundle(const fs::path& bundle_path, size_t size) {
  if (code_size().codec == "lrzip") {
    testing::ScratchDir dir;
    const fs::path tar = dir / "code.tar";
    const std::string command = "LRZIP=NOCONFIG '" + std::string(PGOLF_CODE_BUNDLE_LRZIP) +
                                "' -Q -d -f -o '" + tar.string() + "' '" + bundle_path.string() +
                                "'";
    EXPECT_EQ(std::system(command.c_str()), 0) << command;
    return read_file(tar);
  }
  const std::string bundle = read_file(bundle_path);
  std::string tar(size, '\0');
  EXPECT_EQ(BrotliDecoderDecompress(bundle.size(), reinterpret_cast<const uint8_t*>(bundle.data()),
                                    &size, reinterpret_cast<uint8_t*>(tar.data())),
            BROTLI_DECODER_RESULT_SUCCESS);
  tar.resize(size);
  return tar;
}

// The build's bundle, unpacked: lrzip or brotli, then ustar (one 512-byte
// header per file, its bytes padded to 512, two zero blocks at the end).
std::vector<Member> bundle_members() {
  size_t size = 1024;
  for (const CodeFile& f : code_file_table()) size += 512 + (f.bytes + 511) / 512 * 512;
  const std::string tar = unpack_bundle(PGOLF_CODE_BUNDLE, size);
  EXPECT_EQ(size, tar.size()) << "the archive's size is not what code_file_table() implies";
  std::vector<Member> members;
  size_t at = 0;
  while (at + 512 <= tar.size() && tar[at] != '\0') {
    const char* h = tar.data() + at;
    std::string path(h, strnlen(h, 100));
    const std::string prefix(h + 345, strnlen(h + 345, 155));
    if (!prefix.empty()) path = prefix + "/" + path;
    const size_t bytes = std::stoull(std::string(h + 124, 11), nullptr, 8);
    members.push_back({path, std::string(h, 512), tar.substr(at + 512, bytes)});
    at += 512 + (bytes + 511) / 512 * 512;
  }
  EXPECT_EQ(tar.substr(at), std::string(1024, '\0'));
  return members;
}

std::vector<std::string> project_includes(const std::string& text) {
  std::vector<std::string> names;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    const size_t hash = line.find_first_not_of(" \t");
    if (hash == std::string::npos || line[hash] != '#') continue;
    const size_t open = line.find("include \"", hash);
    if (open == std::string::npos) continue;
    const size_t start = open + 9;
    names.push_back(line.substr(start, line.find('"', start) - start));
  }
  return names;
}

// Runs tools/code_bundle; returns its exit code, its output in `output`.
int run_tool(const std::string& args, std::string* output = nullptr) {
  const std::string command = std::string(PGOLF_CODE_BUNDLE_TOOL) + " " + args + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return -1;
  std::string text;
  char buffer[4096];
  while (size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) text.append(buffer, n);
  const int status = ::pclose(pipe);
  if (output) *output = text;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

TEST(CodeSize, CountedBytesAreTheBundlesSize) {
  const CodeSize size = code_size();
  EXPECT_EQ(size.bytes, static_cast<int64_t>(fs::file_size(PGOLF_CODE_BUNDLE)));
  EXPECT_EQ(size.bundle, fs::path(PGOLF_CODE_BUNDLE).filename().string());
  EXPECT_EQ(size.codec, std::string(PGOLF_CODE_BUNDLE_LRZIP).empty() ? "brotli" : "lrzip");
  EXPECT_LT(size.bytes, size.raw_bytes);
}

TEST(CodeSize, BundleHoldsExactlyTheCodeFilesAsInTheCheckout) {
  const std::vector<Member> members = bundle_members();
  std::vector<std::string> paths;
  int64_t raw = 0;
  for (const Member& m : members) {
    paths.push_back(m.path);
    raw += static_cast<int64_t>(m.data.size());
    EXPECT_EQ(m.data, read_file(fs::path(PGOLF_SOURCE_DIR) / m.path)) << m.path;
    // Nothing of the file's owner, mode or time: 0644, 0:0 unnamed, mtime 0.
    EXPECT_EQ(m.header.substr(100, 8), std::string("0000644\0", 8)) << m.path;
    EXPECT_EQ(m.header.substr(108, 8), std::string("0000000\0", 8)) << m.path;  // uid
    EXPECT_EQ(m.header.substr(116, 8), std::string("0000000\0", 8)) << m.path;  // gid
    EXPECT_EQ(m.header.substr(136, 12), std::string("00000000000\0", 12)) << m.path;
    EXPECT_EQ(m.header.substr(265, 64), std::string(64, '\0')) << m.path;
  }
  EXPECT_EQ(paths, code_files());
  EXPECT_EQ(static_cast<int64_t>(members.size()), code_size().files);
  EXPECT_EQ(raw, code_size().raw_bytes);
}

TEST(CodeSize, TheEvaluatorsSourcesAreInTheToolsAndQuantizersItDoesNotNeedAreOut) {
  const std::set<std::string> files(code_files().begin(), code_files().end());
  for (const char* needed :
       {"CMakeLists.txt", "cmake/Layers.cmake", "tools/code_bundle.cpp", "src/cli/main.cpp",
        "src/cli/cmd_eval.cpp", "src/artifact/artifact.cpp", "src/quant/lqer.cpp",
        "src/eval/final_eval.cpp", "src/common/pch.h" /* named by cmake/Layers.cmake */}) {
    EXPECT_TRUE(files.count(needed)) << needed;
  }
  for (const std::string& path : files) {
    for (const char* out : {"src/perf/",
                            "src/workflow/",
                            "src/cli/workflow/",
                            "src/train/",
                            "src/export/",
                            "src/cli/cmd_bench",
                            "src/cli/cmd_doctor",
                            "src/cli/cmd_data",
                            "src/cli/cmd_train",
                            "src/cli/cmd_inspect",
                            "src/artifact/inspect",
                            "src/quant/gptq",
                            "src/quant/scheme",
                            "src/quant/hessian",
                            "src/quant/clip_search",
                            "src/data/caseops",
                            "src/data/corpus",
                            "tests/",
                            "bench/",
                            "scripts/",
                            "docs/"}) {
      EXPECT_NE(path.rfind(out, 0), 0u) << path << " is not needed to evaluate an artifact";
    }
  }
}

TEST(CodeSize, EveryProjectIncludeOfTheBundleResolvesInsideIt) {
  const std::set<std::string> files(code_files().begin(), code_files().end());
  for (const Member& m : bundle_members()) {
    const fs::path folder = fs::path(m.path).parent_path();
    for (const std::string& name : project_includes(m.data)) {
      EXPECT_TRUE(files.count((folder / name).lexically_normal().string()) ||
                  files.count("src/" + name) || files.count(name))
          << m.path << " includes \"" << name << "\", which is not in the bundle";
    }
  }
}

TEST(CodeSize, TheBundleIsReproducibleByteForByte) {
  testing::ScratchDir scratch;
  const std::string args = std::string(PGOLF_SOURCE_DIR) + " " + PGOLF_CODE_ENTRY_LIST + " ";
  const std::string name = fs::path(PGOLF_CODE_BUNDLE).filename().string();
  for (const char* run : {"a", "b"}) {
    fs::create_directories(scratch / run);
    const fs::path dir = scratch / run;
    ASSERT_EQ(run_tool(args + (dir / name).string() + " " + (dir / "code_size.cpp").string() + " " +
                       PGOLF_CODE_BUNDLE_LRZIP),
              0);
  }
  EXPECT_EQ(read_file(scratch / "a" / name), read_file(scratch / "b" / name));
  EXPECT_EQ(read_file(scratch / "a/code_size.cpp"), read_file(scratch / "b/code_size.cpp"));
  // ... and the same as the build's, whatever the files' owners and times.
  EXPECT_EQ(read_file(scratch / "a" / name), read_file(PGOLF_CODE_BUNDLE));
}

// The closure's three rules on a miniature checkout: includes, a header's
// .cpp, a folder's header-less .cpp files (not the entries' folder's).
TEST(CodeSize, TheClosureFollowsIncludesSourcesAndFolders) {
  testing::ScratchDir root;
  write(root / "src/cli/main.cpp", "#include \"cli/commands.h\"\n#include <vector>\n");
  write(root / "src/cli/commands.h", "#include \"model/gpt.h\"\n");
  write(root / "src/cli/commands.cpp", "\n");
  write(root / "src/cli/cmd_bench.cpp", "#include \"perf/bench.h\"\n");  // not an entry
  write(root / "src/perf/bench.h", "\n");
  write(root / "src/model/gpt.h", "  #  include \"kernels/fused.h\"\n");
  write(root / "src/model/gpt.cpp", "\n");
  write(root / "src/kernels/fused.h", "\n");
  write(root / "src/kernels/attention.cpp", "#include \"kernels/fused.h\"\n");
  write(root / "src/data/corpus.h", "\n");  // nobody includes it
  write(root / "CMakeLists.txt", "project(x)\n");
  write(root / "entries.txt",
        (root / "src/cli/main.cpp").string() + "\n" + (root / "CMakeLists.txt").string() + "\n");
  const fs::path bundle = root / "out.tar.br";
  const fs::path cpp = root / "out.cpp";
  std::string output;
  ASSERT_EQ(run_tool(root.path().string() + " " + (root / "entries.txt").string() + " " +
                         bundle.string() + " " + cpp.string(),
                     &output),
            0)
      << output;
  const std::string generated = read_file(cpp);
  for (const char* in : {"CMakeLists.txt", "src/cli/main.cpp", "src/cli/commands.h",
                         "src/cli/commands.cpp", "src/model/gpt.h", "src/model/gpt.cpp",
                         "src/kernels/fused.h", "src/kernels/attention.cpp"}) {
    EXPECT_NE(generated.find(std::string("{\"") + in + "\""), std::string::npos) << in;
  }
  for (const char* out : {"cmd_bench", "perf/", "corpus", "entries.txt"}) {
    EXPECT_EQ(generated.find(out), std::string::npos) << out;
  }
  EXPECT_NE(generated.find(", 8, "), std::string::npos) << generated;  // 8 files

  // An include that names no file of the checkout is an error, not a smaller count.
  write(root / "src/model/gpt.cpp", "#include \"model/missing.h\"\n");
  EXPECT_NE(run_tool(root.path().string() + " " + (root / "entries.txt").string() + " " +
                         bundle.string() + " " + cpp.string(),
                     &output),
            0);
  EXPECT_NE(output.find("src/model/gpt.cpp: #include \"model/missing.h\""), std::string::npos)
      << output;
}

TEST(CodeSize, BreakdownNamesTheBundleAndEachFolder) {
  const std::string text = code_size_breakdown();
  EXPECT_NE(text.find(with_commas(code_size().bytes) + " bytes counted"), std::string::npos)
      << text;
  EXPECT_NE(text.find(std::string(code_size().bundle)), std::string::npos) << text;
  EXPECT_NE(text.find("src/eval"), std::string::npos) << text;
  const testing::CliRun r = testing::run_pgolf("inspect --code");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("src/cli/cmd_eval.cpp"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace pgolf
