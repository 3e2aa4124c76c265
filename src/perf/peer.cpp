#include "perf/peer.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "common/error.h"
#include "config/options.h"
#include "config/presets.h"
#include "dist/process.h"

namespace pgolf {
namespace {

// A reference script the harness can build and step, and the configurations it can reproduce:
// its entry's preset with any of `free_model_keys` changed (sizes and what depends on the
// layer count) and none of `fixed_train_keys` (training settings its step lacks).
struct PeerEntry {
  const char* entry;   // bench/reference/entry_model.py --entry
  const char* preset;  // the entry as run
  const char* script;  // what --compare must be given
  std::set<std::string> free_model_keys;
  std::set<std::string> fixed_train_keys;
  // A constraint between settings the script ties together (empty: none):
  // what it cannot reproduce, or "" when it can.
  std::string (*tied)(const Config&) = nullptr;
};

const std::set<std::string> kSizeKeys = {"vocab_size",     "num_layers",          "model_dim",
                                         "num_heads",      "num_kv_heads",        "mlp_mult",
                                         "tie_embeddings", "tied_embed_init_std", "logit_softcap",
                                         "rope_base",      "qk_gain_init"};

std::set<std::string> with(std::set<std::string> keys, const std::set<std::string>& more) {
  keys.insert(more.begin(), more.end());
  return keys;
}

// Training settings only #1855's script has: its Muon's Newton-Schulz
// coefficients, row normalisation and bf16 momentum, and the packed-document
// loader (pgolf's bench feeds a documents preset's batch as one packed row).
const std::set<std::string> kPr1855TrainKeys = {"muon_ns_coefficients", "muon_row_normalize",
                                                "muon_bf16_momentum", "train_loader"};

const PeerEntry kBaselinePeer = {
    "baseline", "baseline", "the official baseline script", kSizeKeys,
    with({"grad_clip_norm", "muon_wd", "adam_wd", "muon_eq_r"}, kPr1855TrainKeys)};
// #1406's code has no MuonEq-R (its text names it; spec model-and-training).
const PeerEntry kPr1406Peer = {"pr1406", "pr1406", "#1406's script",
                               with(kSizeKeys, {"recur_layers", "ve_layers", "xsa_last_n"}),
                               with({"muon_eq_r"}, kPr1855TrainKeys)};

// #1855's script cuts documents at TRAIN_SEQ_LEN (its loader's max_seq_len,
// and the max_seqlen its step passes); pgolf at MAX_DOC_LEN.
std::string pr1855_doc_len(const Config& c) {
  if (c.model.max_doc_len == c.train.train_seq_len) return "";
  return fmt::format(
      "MAX_DOC_LEN={} (it cuts documents at TRAIN_SEQ_LEN={}; pass --max-doc-len {})",
      c.model.max_doc_len, c.train.train_seq_len, c.train.train_seq_len);
}

// #1855's script (docs/entries/pr1855.md): its model settings are all read
// from the environment, except the MLP's LeakyReLU slope, the init scheme and
// the banks. It always keeps Muon's momentum in bf16: MUON_BF16_MOMENTUM=0
// (pr1855-cpu) is left free, the one difference of the compared step (an
// elementwise cast and bf16 momentum arithmetic on the banks' gradients).
// No MuonEq-R, no QAT.
const PeerEntry kPr1855Peer = {
    "pr1855",
    "pr1855",
    "#1855's script",
    with(kSizeKeys,
         {"xsa_last_n", "rope_dims", "ln_scale", "skip_gates_enabled", "parallel_start_layer",
          "parallel_final_lane", "num_loops", "loop_start", "loop_end", "smear_gate_enabled",
          "gate_window", "sparse_attn_gate_enabled", "sparse_attn_gate_scale",
          "sparse_attn_gate_init_std", "max_doc_len", "rope_yarn", "rope_train_seq_len"}),
    {"muon_eq_r", "late_qat", "muon_ns_coefficients", "train_loader"},
    pr1855_doc_len};

// The settings of `config` that `peer`'s script cannot reproduce, as
// "NAME=VALUE (its value is V)" in the options' order.
std::vector<std::string> mismatches(const PeerEntry& peer, const Config& config) {
  Config c = config;
  Config reference = preset(peer.preset);
  const auto mine = config_options(c);
  const auto theirs = config_options(reference);
  std::vector<std::string> out;
  for (size_t i = 0; i < mine.size(); ++i) {
    const auto& o = mine[i];
    const bool fixed = (o.group == "model" && !peer.free_model_keys.count(o.key)) ||
                       (o.group == "train" && peer.fixed_train_keys.count(o.key));
    if (fixed && o.get() != theirs[i].get()) {
      out.push_back(fmt::format("{}={} (its value is {})", o.env, o.get(), theirs[i].get()));
    }
  }
  if (peer.tied) {
    if (auto why = peer.tied(config); !why.empty()) out.push_back(why);
  }
  return out;
}

std::filesystem::path executable_dir() {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::path() : exe.parent_path();
}

std::string tail_of(const std::filesystem::path& path, size_t max_chars) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  return text.size() > max_chars ? "..." + text.substr(text.size() - max_chars) : text;
}

}  // namespace

std::filesystem::path find_peer_harness(const ToolsConfig& tools) {
  std::vector<std::filesystem::path> candidates;
  if (!tools.peer_harness.empty()) {
    candidates.emplace_back(tools.peer_harness);
  } else {
    candidates.push_back(executable_dir() / ".." / "bench" / "peer_step.py");
    candidates.emplace_back("bench/peer_step.py");
  }
  for (const auto& c : candidates) {
    if (std::filesystem::is_regular_file(c)) return std::filesystem::weakly_canonical(c);
  }
  fail("cannot find the peer harness bench/peer_step.py (looked at {}); set PGOLF_PEER_HARNESS",
       candidates.front().string());
}

std::string peer_entry_for(const Config& config) {
  // The weight banks are #1406's and #1855's (the script with fewer settings
  // it cannot reproduce; #1406's on a tie); everything else is measured
  // against the baseline.
  const bool banks = config.model.weight_layout == WeightLayout::kBanks;
  const PeerEntry* peer = banks ? &kPr1406Peer : &kBaselinePeer;
  auto missing = mismatches(*peer, config);
  if (banks) {
    auto for_pr1855 = mismatches(kPr1855Peer, config);
    if (for_pr1855.size() < missing.size()) {
      peer = &kPr1855Peer;
      missing = std::move(for_pr1855);
    }
  }
  PGOLF_CHECK(missing.empty(),
              "--compare times {}, which has no {}; compare a preset of the baseline "
              "architecture (baseline, cpu) with the official train_gpt.py, of #1406's (pr1406, "
              "pr1406-cpu) with #1406's, or of #1855's (pr1855, pr1855-cpu) with #1855's",
              peer->script, missing.front());
  return peer->entry;
}

std::vector<std::string> peer_command(const Config& config, int64_t batch_tokens, int threads,
                                      const PeerSetup& setup) {
  const DeviceSpec& device = config.runtime.device;
  const torch::ScalarType dtype = resolve_compute_dtype(
      config.runtime.dtype, torch::Device(device.is_cuda() ? torch::kCUDA : torch::kCPU));
  std::vector<std::string> cmd = {
      setup.python, "-u", setup.harness.string(), "--serve", "--script", setup.script.string(),
      "--entry", peer_entry_for(config), "--seq-len", std::to_string(config.train.train_seq_len),
      "--batch-tokens", std::to_string(batch_tokens),
      // the peer computes where pgolf does, in the dtype pgolf resolves there (auto: bf16, the
      // scripts' autocast, on CUDA; fp32 on the CPU)
      "--device", device.str(), "--dtype", dtype == torch::kBFloat16 ? "bf16" : "fp32",
      "--ns-dtype", config.train.muon_ns_bf16 ? "bf16" : "fp32", "--threads",
      std::to_string(threads), "--warmup", std::to_string(setup.warmup)};
  std::string modes;
  for (const auto& m : setup.modes) {
    if (!modes.empty()) modes += ',';
    modes += m;
  }
  cmd.insert(cmd.end(), {"--modes", modes});
  if (!setup.weights.empty()) cmd.insert(cmd.end(), {"--load", setup.weights.string()});
  if (!setup.tokens.empty()) cmd.insert(cmd.end(), {"--tokens", setup.tokens.string()});
  if (setup.eval_seqs > 0) cmd.insert(cmd.end(), {"--eval-seqs", std::to_string(setup.eval_seqs)});
  // Every model and training setting under the script's own variable name:
  // the script reads the ones it knows and ignores the rest.
  Config c = config;
  for (const auto& o : config_options(c)) {
    if (o.group == "model" || o.group == "train") {
      cmd.insert(cmd.end(), {"--set", o.env + "=" + o.get()});
    }
  }
  return cmd;
}

PeerHarness::PeerHarness(const Config& config, int64_t batch_tokens, int threads,
                         const PeerSetup& setup)
    : setup_(setup) {
  PGOLF_CHECK(std::filesystem::is_regular_file(setup.script),
              "--compare: '{}' is not a file (the official train_gpt.py)", setup.script.string());
  SpawnOptions spawn;
  spawn.argv = peer_command(config, batch_tokens, threads, setup);
  spawn.pipe_stdin = spawn.pipe_stdout = true;
  spawn.stderr_path = setup.log;
  child_ = std::make_unique<ChildProcess>(spawn);
  header_ = read_reply("its set-up");
  PGOLF_CHECK(header_.value("ready", false), "the peer harness did not get ready: {}",
              header_.dump());
}

PeerHarness::~PeerHarness() {
  if (child_) child_->write_line("quit");
}

double PeerHarness::run(const std::string& mode, int64_t steps) {
  if (!child_->write_line(fmt::format("run {} {}", mode, steps))) {
    fail_with_log("the peer harness exited");
  }
  const auto reply = read_reply(mode + " steps");
  PGOLF_CHECK(reply.value("mode", "") == mode && reply.contains("seconds"),
              "the peer harness answered '{}' to 'run {} {}'", reply.dump(), mode, steps);
  return reply["seconds"].get<double>();
}

double PeerHarness::run_eval(const std::string& mode, int64_t batches) {
  if (!child_->write_line(fmt::format("eval {} {}", mode, batches))) {
    fail_with_log("the peer harness exited");
  }
  const auto reply = read_reply(mode + " evaluation");
  PGOLF_CHECK(
      reply.value("mode", "") == mode && reply.value("eval", false) && reply.contains("seconds"),
      "the peer harness answered '{}' to 'eval {} {}'", reply.dump(), mode, batches);
  return reply["seconds"].get<double>();
}

nlohmann::json PeerHarness::read_reply(const std::string& waiting_for) {
  const auto line = child_->read_line();
  if (!line) fail_with_log(fmt::format("the peer harness exited during {}", waiting_for));
  try {
    return nlohmann::json::parse(*line);
  } catch (const nlohmann::json::exception&) {
    fail_with_log(fmt::format("the peer harness printed '{}' during {}", *line, waiting_for));
  }
}

void PeerHarness::fail_with_log(const std::string& what) {
  const int code = child_->wait();
  fail("{} (exit code {}; python: {}). Its log {}:\n{}", what, code, setup_.python,
       setup_.log.string(), tail_of(setup_.log, 3000));
}

}  // namespace pgolf
