// The entries' own train_gpt.py scripts for parity tests: read from a local
// copy of openai/parameter-golf's history ($PGOLF_OFFICIAL_REPO, a checkout or
// a bare git folder) or named directly by each script's environment variable;
// tests skip when neither is there, or when no Python with torch is.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

#include "tests/test_util.h"

namespace pgolf::testing {

struct ReferenceScript {
  const char* env;
  const char* commit;
  const char* path;
};
// The official baseline script at the commit the golden fixtures come from.
inline constexpr ReferenceScript kBaselineScript = {
    "PGOLF_OFFICIAL_TRAIN_GPT", "48404cd4f8ba0add4f3c4bd2c3a990bb4bec52c7", "train_gpt.py"};
// #1406's (pull request 1406's head; bench/reference/README.md).
inline constexpr ReferenceScript kPr1406Script = {
    "PGOLF_PR1406_TRAIN_GPT", "dd52bdd22704aafd079fc34af03091e122dffc2d",
    "records/track_10min_16mb/2026-04-06_DepthRecurrence_PreQuantTTT_11L_8xH100/train_gpt.py"};
// The record #1855 (docs/entries/pr1855.md §0).
inline constexpr ReferenceScript kPr1855Script = {
    "PGOLF_PR1855_TRAIN_GPT", "4908dc46f21ed3fdd08d2fdca285deb2194b9599",
    "records/track_10min_16mb/2026-04-27_SP8192_LQER_SparseGate_BOSSmearFix_9HpStack_1.0611/"
    "train_gpt.py"};

// The script as a file (in `dir` when read from the repository); empty if
// neither source is there.
inline std::filesystem::path official_script(const ScratchDir& dir,
                                             const ReferenceScript& script = kBaselineScript) {
  if (const char* p = std::getenv(script.env); p && std::filesystem::exists(p)) return p;
  const char* repo = std::getenv("PGOLF_OFFICIAL_REPO");
  if (!repo || !std::filesystem::exists(repo)) return {};
  const auto out = dir / "train_gpt.py";
  const std::string git_dir = std::filesystem::exists(std::filesystem::path(repo) / ".git")
                                  ? std::string(repo) + "/.git"
                                  : std::string(repo);
  const std::string cmd = "git --git-dir='" + git_dir + "' show " + script.commit + ":" +
                          script.path + " > '" + out.string() + "' 2>/dev/null";
  return std::system(cmd.c_str()) == 0 ? out : std::filesystem::path();
}

// $PGOLF_PYTHON, else python3.
inline std::string python_command() {
  const char* py = std::getenv("PGOLF_PYTHON");
  return py && *py ? py : "python3";
}

inline bool python_has_torch() {
  return std::system((python_command() + " -c 'import torch, numpy' >/dev/null 2>&1").c_str()) == 0;
}

}  // namespace pgolf::testing
