// The entries' own train_gpt.py scripts for parity tests: read from a local
// copy of openai/parameter-golf's history ($PGOLF_OFFICIAL_REPO, a checkout or
// a bare git folder) or named directly by each script's environment variable;
// tests skip when neither is there, or when no Python with torch is.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "config/presets.h"
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

// `python bench/reference/<tool> --script <script> <args>`, its output kept.
struct HarnessRun {
  int rc = 0;
  std::string command, output;
};
inline HarnessRun run_harness(const std::string& tool, const std::filesystem::path& script,
                              const std::string& args, const std::filesystem::path& log) {
  HarnessRun run;
  const auto path = std::filesystem::path(PGOLF_SOURCE_DIR) / "bench/reference" / tool;
  run.command =
      python_command() + " '" + path.string() + "' --script '" + script.string() + "' " + args;
  run.rc = std::system((run.command + " > '" + log.string() + "' 2>&1").c_str());
  std::ifstream in(log);
  run.output.assign(std::istreambuf_iterator<char>(in), {});
  return run;
}

// #1855's stack shrunk for the parity tests: 5 blocks of width 64 (4/2
// heads), blocks 1-2 looped, lanes from block 3, 64-token sequences, as the
// harnesses' --set settings.
inline std::string shrunk_pr1855_settings(int64_t vocab) {
  return " --set VOCAB_SIZE=" + std::to_string(vocab) +
         " --set NUM_LAYERS=5 --set MODEL_DIM=64 --set NUM_HEADS=4 --set NUM_KV_HEADS=2"
         " --set LOOP_START=1 --set LOOP_END=2 --set PARALLEL_START_LAYER=3"
         " --set TRAIN_SEQ_LEN=64 --set EVAL_SEQ_LEN=64 --set GATE_WINDOW=12";
}

// pgolf's config of the same shrunk stack.
inline Config shrunk_pr1855_config(int64_t vocab) {
  Config c = preset("pr1855");
  ModelConfig& m = c.model;
  m.vocab_size = vocab;
  m.num_layers = 5;
  m.model_dim = 64;
  m.num_heads = 4;
  m.num_kv_heads = 2;
  m.loop_start = 1;
  m.loop_end = 2;
  m.parallel_start_layer = 3;
  m.max_doc_len = 64;
  c.train.train_seq_len = 64;
  c.eval.eval_seq_len = 64;
  return c;
}

inline bool python_has_torch() {
  return std::system((python_command() + " -c 'import torch, numpy' >/dev/null 2>&1").c_str()) == 0;
}

}  // namespace pgolf::testing
