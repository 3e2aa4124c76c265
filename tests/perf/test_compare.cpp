// pgolf bench --compare: the peer's command line and guard, the table, and
// (when python3 with torch and the official train_gpt.py are at hand) a tiny
// end-to-end comparison through the CLI.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>

#include "config/presets.h"
#include "model/flops.h"
#include "perf/compare.h"
#include "perf/eval_bench.h"
#include "perf/peer.h"
#include "tests/reference_scripts.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

// A reference script: where tests find it (an environment variable naming the
// file) and where it lies in openai/parameter-golf's history.
using testing::kBaselineScript;
using testing::kPr1406Script;
using testing::kPr1855Script;
using testing::official_script;
using testing::python_has_torch;

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST(PeerCommand, PassesTheConfigUnderTheScriptsNames) {
  Config c = preset("cpu");
  PeerSetup s;
  s.python = "python3";
  s.harness = "bench/peer_step.py";
  s.script = "/tmp/train_gpt.py";
  s.modes = {"eager", "compiled"};
  const auto cmd = peer_command(c, 4096, 2, s);
  EXPECT_EQ(cmd.front(), "python3");
  EXPECT_TRUE(contains(cmd, "--serve"));
  EXPECT_TRUE(contains(cmd, "NUM_LAYERS=6"));
  EXPECT_TRUE(contains(cmd, "MODEL_DIM=256"));
  EXPECT_TRUE(contains(cmd, "NUM_KV_HEADS=2"));
  EXPECT_TRUE(contains(cmd, "MATRIX_LR=0.04"));
  EXPECT_TRUE(contains(cmd, "eager,compiled"));
  // The cpu preset runs Newton-Schulz in fp32; the peer mirrors it.
  auto at = std::find(cmd.begin(), cmd.end(), "--ns-dtype");
  ASSERT_NE(at, cmd.end());
  EXPECT_EQ(*(at + 1), "fp32");
  at = std::find(cmd.begin(), cmd.end(), "--seq-len");
  ASSERT_NE(at, cmd.end());
  EXPECT_EQ(*(at + 1), "256");
}

// The peer computes on the run's device, in the dtype pgolf resolves there:
// auto is fp32 on the CPU and bf16 (the scripts' autocast) on CUDA.
TEST(PeerCommand, PassesTheRunsDeviceAndItsComputeDtype) {
  const auto arg = [](const std::vector<std::string>& cmd, const std::string& flag) {
    const auto at = std::find(cmd.begin(), cmd.end(), flag);
    return at == cmd.end() || at + 1 == cmd.end() ? std::string("<none>") : *(at + 1);
  };
  Config c = preset("cpu");
  ASSERT_EQ(c.runtime.dtype, ComputeDtype::kAuto);
  auto cmd = peer_command(c, 4096, 1, PeerSetup{});
  EXPECT_EQ(arg(cmd, "--device"), "cpu");
  EXPECT_EQ(arg(cmd, "--dtype"), "fp32");
  c.runtime.dtype = ComputeDtype::kBf16;
  EXPECT_EQ(arg(peer_command(c, 4096, 1, PeerSetup{}), "--dtype"), "bf16");

  c = preset("baseline");
  c.runtime.device = DeviceSpec::parse("cuda", "PGOLF_DEVICE");
  cmd = peer_command(c, 4096, 1, PeerSetup{});
  EXPECT_EQ(arg(cmd, "--device"), "cuda");
  EXPECT_EQ(arg(cmd, "--dtype"), "bf16");
  c.runtime.device = DeviceSpec::parse("cuda:1", "PGOLF_DEVICE");
  c.runtime.dtype = ComputeDtype::kFp32;
  cmd = peer_command(c, 4096, 1, PeerSetup{});
  EXPECT_EQ(arg(cmd, "--device"), "cuda:1");
  EXPECT_EQ(arg(cmd, "--dtype"), "fp32");
}

TEST(PeerCommand, PicksTheScriptThatHasTheArchitecture) {
  EXPECT_EQ(peer_entry_for(preset("baseline")), "baseline");
  EXPECT_EQ(peer_entry_for(preset("cpu")), "baseline");
  EXPECT_EQ(peer_entry_for(preset("pr1406")), "pr1406");
  EXPECT_EQ(peer_entry_for(preset("pr1406-cpu")), "pr1406");
  EXPECT_PGOLF_ERROR(peer_entry_for(preset("pr562")), "the official baseline script, which has no");
  EXPECT_PGOLF_ERROR(peer_entry_for(preset("pr461")), "the official baseline script, which has no");
  Config c = preset("cpu");
  c.train.muon_wd = 0.04;
  EXPECT_PGOLF_ERROR(peer_entry_for(c), "MUON_WD");
  // #1406's script has weight decay and clipping, but no MuonEq-R and no trigram.
  c = preset("pr1406-cpu");
  c.train.muon_wd = 0.02;
  EXPECT_EQ(peer_entry_for(c), "pr1406");
  c.train.muon_eq_r = true;
  EXPECT_PGOLF_ERROR(peer_entry_for(c), "#1406's script, which has no MUON_EQ_R=");
  c = preset("pr1406-cpu");
  c.model.trigram = true;
  EXPECT_PGOLF_ERROR(peer_entry_for(c), "TRIGRAM");
  const auto cmd = peer_command(preset("pr1406-cpu"), 4096, 1, PeerSetup{});
  const auto at = std::find(cmd.begin(), cmd.end(), "--entry");
  ASSERT_NE(at, cmd.end());
  EXPECT_EQ(*(at + 1), "pr1406");
  EXPECT_TRUE(contains(cmd, "RECUR_LAYERS=2,3"));
}

// #1855's architecture (banks too) goes to #1855's script, at any size, with
// its documents cut where the script cuts them (TRAIN_SEQ_LEN).
TEST(PeerCommand, PicksPr1855sScriptForItsPresets) {
  EXPECT_EQ(peer_entry_for(preset("pr1855")), "pr1855");
  EXPECT_EQ(peer_entry_for(preset("pr1855-cpu")), "pr1855");
  Config c = preset("pr1855-cpu");
  c.model.num_layers = 5;
  c.model.loop_start = 1;
  c.model.loop_end = 2;
  c.model.parallel_start_layer = 3;
  c.model.xsa_last_n = 5;
  EXPECT_EQ(peer_entry_for(c), "pr1855");
  c.train.train_seq_len = 64;
  EXPECT_PGOLF_ERROR(peer_entry_for(c), "#1855's script, which has no MAX_DOC_LEN=256");
  c.model.max_doc_len = 64;
  EXPECT_EQ(peer_entry_for(c), "pr1855");
  c.train.muon_eq_r = true;
  EXPECT_PGOLF_ERROR(peer_entry_for(c), "#1855's script, which has no MUON_EQ_R=");
  c = preset("pr1855-cpu");
  c.train.train_loader = TrainLoader::kSequences;
  EXPECT_PGOLF_ERROR(peer_entry_for(c), "TRAIN_LOADER");
  // The older scripts have neither Polar Express nor packed documents.
  c = preset("pr1406-cpu");
  c.train.muon_ns_coefficients = NsCoefficients::kPolarExpress;
  EXPECT_PGOLF_ERROR(peer_entry_for(c), "#1406's script, which has no MUON_NS_COEFFICIENTS=");
  c = preset("cpu");
  c.train.train_loader = TrainLoader::kDocuments;
  EXPECT_PGOLF_ERROR(peer_entry_for(c), "the official baseline script, which has no TRAIN_LOADER=");
  PeerSetup s;
  s.tokens = "/tmp/tokens.safetensors";
  const auto cmd = peer_command(preset("pr1855-cpu"), 4096, 1, s);
  auto at = std::find(cmd.begin(), cmd.end(), "--entry");
  ASSERT_NE(at, cmd.end());
  EXPECT_EQ(*(at + 1), "pr1855");
  at = std::find(cmd.begin(), cmd.end(), "--tokens");
  ASSERT_NE(at, cmd.end());
  EXPECT_EQ(*(at + 1), "/tmp/tokens.safetensors");
  EXPECT_TRUE(contains(cmd, "LOOP_START=1"));
  EXPECT_TRUE(contains(cmd, "PARALLEL_START_LAYER=4"));
  EXPECT_TRUE(contains(cmd, "SPARSE_ATTN_GATE_SCALE=0.5"));
}

TEST(CompareTable, ShowsEveryImplementationWithRatios) {
  CompareResult r;
  r.flops_per_token = 1e6;
  r.impls = {
      {"pgolf", {200, 100, 300}}, {"pytorch eager", {100, 100}}, {"pytorch compiled", {400}}};
  EXPECT_DOUBLE_EQ(r.impls[0].median(), 200);
  EXPECT_DOUBLE_EQ(r.impls[1].median(), 100);
  const std::string t = format_compare_table(r.impls, r.flops_per_token, 1.0);  // peak 1 GFLOP/s
  EXPECT_NE(t.find("pgolf/x"), std::string::npos);
  EXPECT_NE(t.find("pytorch eager"), std::string::npos);
  EXPECT_NE(t.find("2.00x"), std::string::npos);  // 200 / 100
  EXPECT_NE(t.find("0.50x"), std::string::npos);  // 200 / 400
  EXPECT_NE(t.find("20.0%"), std::string::npos);  // 200 tok/s * 1 MFLOP = 0.2 GFLOP/s
  EXPECT_NE(t.find("100.0..300.0"), std::string::npos);
}

TEST(PeerCommand, AsksForTheEvaluationBatch) {
  PeerSetup s;
  s.python = "python3";
  s.harness = "bench/peer_step.py";
  s.script = "/tmp/train_gpt.py";
  s.modes = {"eager"};
  EXPECT_FALSE(contains(peer_command(preset("cpu"), 4096, 1, s), "--eval-seqs"));
  s.eval_seqs = 8;
  const auto cmd = peer_command(preset("cpu"), 4096, 1, s);
  const auto at = std::find(cmd.begin(), cmd.end(), "--eval-seqs");
  ASSERT_NE(at, cmd.end());
  EXPECT_EQ(*(at + 1), "8");
}

// pgolf's side of the evaluation timing scores exactly what the final
// evaluation would on the same windows: each window's last `stride` tokens.
TEST(EvalBench, ScoresTheWindowTails) {
  Config c = preset("cpu");
  c.model = testing::two_layer_model(c.model);
  c.train.train_seq_len = 32;
  EvalBench bench(c, /*batch_seqs=*/3, /*stride=*/8, torch::kCPU);
  EXPECT_EQ(bench.scored_tokens_per_batch(), 24);
  EXPECT_GT(bench.run(2), 0);
  const auto x = bench.inputs(), y = bench.targets();
  ASSERT_EQ(x.sizes(), (std::vector<int64_t>{3, 32}));
  EXPECT_TRUE(torch::equal(x.slice(1, 1), y.slice(1, 0, 31)));
  // Window i starts i*stride into the stream: consecutive windows overlap.
  EXPECT_TRUE(torch::equal(x[1].slice(0, 0, 24), x[0].slice(0, 8)));
  // Fewer FLOPs per scored token than a whole window's forward over the stride
  // (the head runs on the scored tail only), more than one position's.
  const double window = forward_flops_per_token(c.model, 32) * 32 / 8;
  EXPECT_LT(bench.flops_per_scored_token(), window);
  EXPECT_GT(bench.flops_per_scored_token(), forward_flops_per_token(c.model, 32));
  EXPECT_PGOLF_ERROR(EvalBench(c, 3, 33, torch::kCPU), "--eval-stride");
}

// One table row's first number (tokens/s).
double row_tokens_per_s(const std::string& out, const std::string& name) {
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(name + " ", 0) == 0 && line.find("..") != std::string::npos) {
      std::istringstream words(line.substr(name.size()));
      double v = -1;
      words >> v;
      return v;
    }
  }
  return -1;
}

TEST(BenchCompare, TinyModelAgainstTheOfficialScript) {
  testing::ScratchDir dir;
  const auto script = official_script(dir);
  if (script.empty()) {
    GTEST_SKIP()
        << "no official train_gpt.py (set PGOLF_OFFICIAL_TRAIN_GPT or PGOLF_OFFICIAL_REPO)";
  }
  if (!python_has_torch()) GTEST_SKIP() << "no python3 (or $PGOLF_PYTHON) with torch and numpy";
  const auto r = testing::run_pgolf(
      "bench --compare '" + script.string() +
      "' --presets cpu --num-layers 2 --model-dim 64 --num-heads 2 --num-kv-heads 1"
      " --train-seq-len 64 --batch-tokens 128 --steps 1 --warmup 1 --repeats 3 --threads 1"
      " --gemm-size 128 --eval-batch-seqs 4 --eval-stride 16");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("gemm_peak"), std::string::npos) << r.output;
  const auto eval_at = r.output.find("sliding-window evaluation (4 windows of 64, stride 16");
  ASSERT_NE(eval_at, std::string::npos) << r.output;
  for (const char* name : {"pgolf", "pytorch eager", "pytorch compiled"}) {
    EXPECT_GT(row_tokens_per_s(r.output, name), 0) << name << "\n" << r.output;
    EXPECT_GT(row_tokens_per_s(r.output.substr(eval_at), name), 0) << name << "\n" << r.output;
  }
  EXPECT_TRUE(std::regex_search(r.output, std::regex(R"(pytorch compiled .* [0-9]+\.[0-9]+x)")))
      << r.output;
}

// An entry's architecture against the entry's own script (eager only:
// compiling it takes minutes): same parameter count, both step and score.
void expect_entry_steps_beside_its_script(const testing::ReferenceScript& reference,
                                          const std::string& flags) {
  testing::ScratchDir dir;
  const auto script = official_script(dir, reference);
  if (script.empty()) {
    GTEST_SKIP() << "no " << reference.path << " (set " << reference.env
                 << " or PGOLF_OFFICIAL_REPO)";
  }
  if (!python_has_torch()) GTEST_SKIP() << "no python3 (or $PGOLF_PYTHON) with torch and numpy";
  const auto r = testing::run_pgolf("bench --compare '" + script.string() +
                                    "' --compare-modes eager " + flags +
                                    " --steps 1 --warmup 1 --repeats 2 --threads 1"
                                    " --gemm-size 128 --eval-batch-seqs 4 --eval-stride 16");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::regex params(R"(params ([0-9]+) \(peer ([0-9]+)\))");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.output, m, params)) << r.output;
  EXPECT_EQ(m[1], m[2]) << r.output;
  const auto eval_at = r.output.find("sliding-window evaluation (4 windows of 64, stride 16");
  ASSERT_NE(eval_at, std::string::npos) << r.output;
  for (const char* name : {"pgolf", "pytorch eager"}) {
    EXPECT_GT(row_tokens_per_s(r.output, name), 0) << name << "\n" << r.output;
    EXPECT_GT(row_tokens_per_s(r.output.substr(eval_at), name), 0) << name << "\n" << r.output;
  }
}

TEST(BenchCompare, TinyPr1406AgainstItsScript) {
  expect_entry_steps_beside_its_script(
      kPr1406Script,
      "--presets pr1406-cpu --num-layers 4 --model-dim 64 --num-heads 2 --num-kv-heads 1"
      " --recur-layers 1,2 --ve-layers 2,3 --xsa-last-n 2 --train-seq-len 64 --batch-tokens 128");
}

// #1855: one packed row with cu_seqlens, the model looped on both sides, the
// script's Optimizers.
TEST(BenchCompare, TinyPr1855AgainstItsScript) {
  expect_entry_steps_beside_its_script(
      kPr1855Script,
      "--presets pr1855-cpu --num-layers 5 --model-dim 64 --num-heads 4 --num-kv-heads 2"
      " --loop-start 1 --loop-end 2 --parallel-start-layer 3 --xsa-last-n 5 --vocab-size 1024"
      " --train-seq-len 64 --max-doc-len 64 --batch-tokens 256");
}

}  // namespace
}  // namespace pgolf
