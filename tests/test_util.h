// Helpers shared by the tests: where ../shared lives, scratch folders, and a
// skip for tests that need the shared fixtures.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>

#include "common/error.h"
#include "config/config.h"

namespace pgolf::testing {

// ../shared beside the checkout (or $PGOLF_SHARED); empty path if absent.
std::filesystem::path shared_dir();
// The pgolf executable the CLI tests run (the build tree's, or the one beside
// a relocated test binary).
std::filesystem::path pgolf_binary();

// The golden tiny model's shape (golden/README.md): 4 layers, width 128, 4 heads, 2 KV heads.
ModelConfig golden_tiny_config();

// `base` shrunk to 2 layers of width `dim` with 2 heads and 1 KV head: the
// smallest model that still has every part (GQA, a U-Net skip), for tests
// that need seconds, not minutes.
ModelConfig two_layer_model(ModelConfig base = {}, int64_t dim = 64);

// A tiny model with every technique of the entries switched on, in the given
// weight layout (blocks | cores | banks): 5 logical layers of width 64 (cores:
// 4 cores, layer 4 shares core 0), recurrence of layers 1,2 (blocks/banks),
// BigramHash + trigram, SmearGate, partial RoPE with NTK above 8 tokens, LN
// scale, XSA on the last 2 cores, VE on layers 3,4, value residual, gated
// attention, LeakyReLU(0.5)^2, orthogonal init. "pr1855": tiny_pr1855_config().
ModelConfig tiny_entry_config(const std::string& layout);
// #1855's stack at that size: blocks 1-2 looped once more, lanes from block 3,
// gated skips, the BOS-masked smear, the sparse gate, documents cut every 4 tokens.
ModelConfig tiny_pr1855_config();

// The challenge's sp1024 tokenizer in ../shared/data (valid only if shared_dir() is not empty).
std::filesystem::path official_tokenizer();

// A run folder of a tiny model (2 layers, width 64, 64-token sequences)
// trained for 300 steps on ../shared/data with the int8 export, built once
// per build tree and reused (it holds final_model.safetensors,
// final_model.int8.pgolf and config.json). Needs shared_dir().
const std::filesystem::path& trained_tiny_run();
// Its config, with the data paths set and VAL_MAX_TOKENS = 16,384.
Config trained_tiny_config();

// A run folder's train losses from its metrics.jsonl: step -> loss, the last
// record of each step (a resumed run logs some steps again).
std::map<int64_t, double> train_losses(const std::filesystem::path& run_dir);

// Runs the pgolf binary with `args` (shell syntax), capturing stdout and stderr.
struct CliRun {
  int exit_code;
  std::string output;
};
CliRun run_pgolf(const std::string& args);

// A fresh, empty folder under the system temp dir, removed when destroyed.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// Expects `statement` to throw pgolf::Error whose message contains `needle`.
#define EXPECT_PGOLF_ERROR(statement, needle)                                   \
  do {                                                                          \
    try {                                                                       \
      statement;                                                                \
      ADD_FAILURE() << "expected pgolf::Error containing '" << (needle) << "'"; \
    } catch (const ::pgolf::Error& e) {                                         \
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)          \
          << "message was: " << e.what();                                       \
    }                                                                           \
  } while (false)

}  // namespace pgolf::testing

// Skips the current test when ../shared is not available.
#define PGOLF_REQUIRE_SHARED()                                                         \
  do {                                                                                 \
    if (::pgolf::testing::shared_dir().empty()) GTEST_SKIP() << "../shared not found"; \
  } while (false)
