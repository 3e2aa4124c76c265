#include "tests/test_util.h"

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/fs.h"
#include "config/presets.h"
#include "pipeline/train_run.h"

namespace pgolf::testing {

std::filesystem::path shared_dir() {
  std::filesystem::path candidate;
  if (const char* env = std::getenv("PGOLF_SHARED")) {
    candidate = env;
  } else {
    candidate = std::filesystem::path(PGOLF_SOURCE_DIR) / ".." / "shared";
  }
  if (std::filesystem::exists(candidate / "golden")) return std::filesystem::canonical(candidate);
  return {};
}

std::filesystem::path pgolf_binary() {
  // A relocated test binary (the GPU bundle: scripts/gpu/bundle.sh) finds the
  // pgolf beside it; the build tree's path is compiled in.
  const std::filesystem::path built = PGOLF_BINARY;
  if (std::filesystem::exists(built)) return built;
  return std::filesystem::read_symlink("/proc/self/exe").parent_path() / "pgolf";
}

ModelConfig two_layer_model(ModelConfig base, int64_t dim) {
  base.num_layers = 2;
  base.model_dim = dim;
  base.num_heads = 2;
  base.num_kv_heads = 1;
  return base;
}

ModelConfig golden_tiny_config() {
  ModelConfig c;
  c.num_layers = 4;
  c.model_dim = 128;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  return c;
}

namespace {

// The size of the tiny entry models: 5 layers of width 64, 4/2 heads, MLP 2x.
ModelConfig tiny_size() {
  ModelConfig c;
  c.vocab_size = 96;
  c.num_layers = 5;
  c.model_dim = 64;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.mlp_mult = 2;
  return c;
}

}  // namespace

// #1855's stack at toy size: banks, blocks 1-2 looped once more, lanes from
// block 3, gated skips, the BOS-masked smear, the sparse gate, documents cut
// every 4 tokens.
ModelConfig tiny_pr1855_config() {
  ModelConfig c = tiny_size();
  c.weight_layout = WeightLayout::kBanks;
  c.init_scheme = InitScheme::kOrthogonalAttentionFirst;
  c.rope_dims = 8;
  c.ln_scale = true;
  c.xsa_last_n = 5;
  c.leaky_slope = 0.5;
  c.qk_gain_init = 2.0;
  c.skip_gates_enabled = true;
  c.parallel_start_layer = 3;
  c.num_loops = 1;
  c.loop_start = 1;
  c.loop_end = 2;
  c.smear_gate_enabled = true;
  c.gate_window = 12;
  c.sparse_attn_gate_enabled = true;
  c.sparse_attn_gate_scale = 0.5;
  c.max_doc_len = 4;
  return c;
}

ModelConfig tiny_entry_config(const std::string& layout) {
  if (layout == "pr1855") return tiny_pr1855_config();
  ModelConfig c = tiny_size();
  c.weight_layout = parse_name<WeightLayout>(layout, "layout");
  if (c.weight_layout == WeightLayout::kCores) {
    c.unique_layers = 4;
  } else {
    c.recur_layers = "1,2";
  }
  const bool banks = c.weight_layout == WeightLayout::kBanks;
  c.init_scheme = banks ? InitScheme::kOrthogonalUnscaled : InitScheme::kOrthogonal;
  c.smear_gate = true;
  c.bigram_vocab_size = 37;
  c.bigram_dim = 8;
  c.trigram = true;
  c.rope_dims = 8;
  c.rope_ntk_ref_len = 8;
  c.ln_scale = true;
  c.xsa_last_n = 2;
  c.ve_enabled = true;
  c.ve_dim = 8;
  c.ve_layers = "3,4";
  c.value_residual = true;
  c.value_residual_mode = banks ? ValueResidualMode::kSigmoid : ValueResidualMode::kLambda;
  c.gated_attention = true;
  c.leaky_slope = 0.5;
  c.qk_gain_init = 2.0;
  return c;
}

Config trained_tiny_config() {
  const auto data = shared_dir() / "data";
  Config c = preset("cpu");
  c.model = two_layer_model(c.model);
  c.data.data_path = (data / "shards").string();
  c.data.tokenizer_path = official_tokenizer().string();
  c.train.train_seq_len = 64;
  c.train.train_batch_tokens = 2048;
  c.train.iterations = 300;
  c.train.warmdown_iters = 60;
  c.train.max_wallclock_seconds = 0;
  c.train.val_loss_every = 0;
  c.train.train_log_every = 100;
  c.eval.val_max_tokens = 16384;
  c.eval.val_batch_size = 8192;
  c.eval.eval_stride = 0;
  c.runtime.quiet = true;
  c.validate();
  return c;
}

const std::filesystem::path& trained_tiny_run() {
  static const std::filesystem::path run = [] {
    const auto cache = pgolf_binary().parent_path() / "test_cache";
    const auto done = cache / "trained_tiny_v1";
    if (std::filesystem::exists(done / "results.json")) return done;
    std::filesystem::create_directories(cache);
    Config c = trained_tiny_config();
    c.runtime.run_dir = cache.string();
    c.runtime.run_id = "trained_tiny_v1.partial." + std::to_string(::getpid());
    const auto partial = prepare_run_dir(c);
    run_training(c, partial);
    std::error_code ec;
    std::filesystem::rename(partial, done, ec);  // another process may have won: fine
    if (ec) std::filesystem::remove_all(partial);
    return done;
  }();
  return run;
}

std::map<int64_t, double> train_losses(const std::filesystem::path& run_dir) {
  std::map<int64_t, double> out;
  std::istringstream lines(read_file(run_dir / "metrics.jsonl"));
  for (std::string line; std::getline(lines, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j.at("event") == "train")
      out[j.at("step").get<int64_t>()] = j.at("train_loss").get<double>();
  }
  return out;
}

std::filesystem::path official_tokenizer() {
  return shared_dir() / "data" / "tokenizers" / "fineweb_1024_bpe.model";
}

CliRun run_pgolf(const std::string& args) {
  const std::string command = pgolf_binary().string() + " " + args + " 2>&1";
  CliRun run{-1, ""};
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  std::array<char, 4096> buffer{};
  while (size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe))
    run.output.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

ScratchDir::ScratchDir() {
  static std::atomic<int> counter{0};
  path_ = std::filesystem::temp_directory_path() /
          ("pgolf_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_);
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace pgolf::testing
