#include "perf/peer.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "common/error.h"
#include "common/subprocess.h"
#include "config/options.h"
#include "config/presets.h"

namespace pgolf {
namespace {

// Model settings the baseline script has itself (sizes and constants); every
// other model setting must keep the baseline's value.
const std::set<std::string> kBaselineModelKeys = {
    "vocab_size",    "num_layers", "model_dim",      "num_heads",
    "num_kv_heads",  "mlp_mult",   "tie_embeddings", "tied_embed_init_std",
    "logit_softcap", "rope_base",  "qk_gain_init"};

// Training settings that change the step but that the baseline script lacks.
const std::set<std::string> kEntryTrainKeys = {"grad_clip_norm", "muon_wd", "adam_wd", "muon_eq_r"};

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

std::string find_python() {
  const char* env = std::getenv("PGOLF_PYTHON");
  return env && *env ? env : "python3";
}

std::filesystem::path find_peer_harness() {
  std::vector<std::filesystem::path> candidates;
  if (const char* env = std::getenv("PGOLF_PEER_HARNESS"); env && *env) {
    candidates.emplace_back(env);
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

void check_peer_supports(const Config& config) {
  Config c = config;
  Config base = preset("baseline");
  const auto mine = config_options(c);
  const auto theirs = config_options(base);
  for (size_t i = 0; i < mine.size(); ++i) {
    const auto& o = mine[i];
    const bool foreign_model = o.group == "model" && !kBaselineModelKeys.count(o.key);
    const bool foreign_train = o.group == "train" && kEntryTrainKeys.count(o.key);
    PGOLF_CHECK(!(foreign_model || foreign_train) || o.get() == theirs[i].get(),
                "--compare times the official baseline script, which has no {}={} (its value is "
                "{}); compare a preset of the baseline architecture (baseline, cpu)",
                o.env, o.get(), theirs[i].get());
  }
}

std::vector<std::string> peer_command(const Config& config, int64_t batch_tokens, int threads,
                                      const PeerSetup& setup) {
  std::vector<std::string> cmd = {
      setup.python, "-u", setup.harness.string(), "--serve", "--script", setup.script.string(),
      "--entry", "baseline", "--seq-len", std::to_string(config.train.train_seq_len),
      "--batch-tokens", std::to_string(batch_tokens), "--dtype",
      // the peer runs on the CPU, where auto means fp32
      config.runtime.dtype == "bf16" ? "bf16" : "fp32", "--ns-dtype",
      config.train.muon_ns_bf16 ? "bf16" : "fp32", "--threads", std::to_string(threads), "--warmup",
      std::to_string(setup.warmup)};
  std::string modes;
  for (const auto& m : setup.modes) {
    if (!modes.empty()) modes += ',';
    modes += m;
  }
  cmd.insert(cmd.end(), {"--modes", modes});
  if (!setup.weights.empty()) cmd.insert(cmd.end(), {"--load", setup.weights.string()});
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
  check_peer_supports(config);
  PGOLF_CHECK(std::filesystem::is_regular_file(setup.script),
              "--compare: '{}' is not a file (the official train_gpt.py)", setup.script.string());
  child_ =
      std::make_unique<Subprocess>(peer_command(config, batch_tokens, threads, setup), setup.log);
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
