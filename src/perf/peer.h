// The PyTorch peer of `pgolf bench --compare`: bench/peer_step.py (our own
// Python) run as a child process in --serve mode. It imports the official
// train_gpt.py from a given path, builds its GPT with the same configuration
// and initial weights as pgolf, and times the script's own training step in
// eager mode and under torch.compile whenever asked, so that pgolf can
// interleave its repeats with the peer's.
//
// Protocol (one JSON object per stdout line): the harness sets up, compiles,
// warms up and prints {"ready": true, ...}; each "run MODE STEPS" line is
// answered by {"mode", "seconds", "loss"}, each "eval MODE BATCHES" line (the
// sliding evaluation's forward of a window batch, without gradients) by
// {"mode", "eval": true, "seconds"}; "quit" ends it.
#pragma once

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "config/config.h"

namespace pgolf {

class ChildProcess;

struct PeerSetup {
  std::filesystem::path script;    // the official train_gpt.py
  std::filesystem::path harness;   // bench/peer_step.py
  std::string python;              // a Python that imports torch
  std::filesystem::path weights;   // initial weights to load; empty: the script's own init
  std::filesystem::path tokens;    // the step's batch ('tokens', batch + 1); empty: random
  std::filesystem::path log;       // where the harness's stderr goes
  std::vector<std::string> modes;  // "eager", "compiled"
  int64_t warmup = 2;              // untimed steps per mode (compiles)
  int64_t eval_seqs = 0;           // > 0: also a batch of that many windows to score
};

// PGOLF_PEER_HARNESS (tools.peer_harness), else bench/peer_step.py beside
// the build folder of this executable, else ./bench/peer_step.py; an error if
// none exists.
std::filesystem::path find_peer_harness(const ToolsConfig& tools);

// The reference entry whose script can build and step `config`
// (bench/reference/entry_model.py's --entry): "baseline" for the baseline
// architecture at any size with its optimizers (no weight decay, clipping or
// MuonEq-R), "pr1406" for #1406's at any size (no MuonEq-R), "pr1855" for
// #1855's at any size (its packed documents cut at TRAIN_SEQ_LEN, so
// MAX_DOC_LEN = TRAIN_SEQ_LEN; Polar-Express Muon); an error naming the first
// setting the closest script lacks.
std::string peer_entry_for(const Config& config);

// The harness's command line: every model/train setting as the script's
// environment variable, the sequence length, batch, device (the run's:
// the peer computes where pgolf does), dtypes and threads.
std::vector<std::string> peer_command(const Config& config, int64_t batch_tokens, int threads,
                                      const PeerSetup& setup);

class PeerHarness {
 public:
  // Starts the harness and waits until it is ready (compiling included).
  PeerHarness(const Config& config, int64_t batch_tokens, int threads, const PeerSetup& setup);
  ~PeerHarness();

  // The harness's "ready" line: torch version, params, compile_s, ...
  const nlohmann::json& header() const { return header_; }
  // Wall seconds the peer took for `steps` steps of `mode`.
  double run(const std::string& mode, int64_t steps);
  // Wall seconds the peer took to score its window batch `batches` times.
  double run_eval(const std::string& mode, int64_t batches);

 private:
  nlohmann::json read_reply(const std::string& waiting_for);
  [[noreturn]] void fail_with_log(const std::string& what);

  PeerSetup setup_;
  std::unique_ptr<ChildProcess> child_;
  nlohmann::json header_;
};

}  // namespace pgolf
