// Phased LoRA TTT against the record's own eval_val_ttt_phased, run on the
// CPU by bench/reference/pr1855_ttt.py: the record's stack shrunk to 5 blocks
// of width 64 (vocabulary 8,192), perturbed weights, the first 12,000 tokens
// of the CaseOps DEV validation shard (11 documents) with their byte
// sidecar; TTT shrunk to rank 4, batches of 4 documents, chunks of 16, 64
// tokens of context, 3 global phases on 8 prefix documents. Compared: the
// batch queue, every document's scored tokens, bytes and loss, the phases'
// document counts, and val_loss / val_bpb. Skips without the script, a Python
// with torch or ../shared.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>

#include "config/presets.h"
#include "data/shard.h"
#include "data/tokenizer.h"
#include "eval/phased_ttt.h"
#include "io/safetensors.h"
#include "model/gpt.h"
#include "model/weights.h"
#include "tests/reference_scripts.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

using testing::ScratchDir;

constexpr int64_t kTokens = 12000;
constexpr int64_t kLoraSeed = 0;

const char* const kTttSettings =
    " --set TTT_LORA_RANK=4 --set TTT_BATCH_SIZE=4 --set TTT_CHUNK_SIZE=16"
    " --set TTT_EVAL_SEQ_LEN=64 --set PHASED_TTT_PREFIX_DOCS=8 --set PHASED_TTT_NUM_PHASES=3"
    " --set GLOBAL_TTT_CHUNK_TOKENS=256 --set GLOBAL_TTT_BATCH_SEQS=2";

Config small_config() {
  Config c = testing::shrunk_pr1855_config(8192);
  PhasedTttConfig& t = c.ttt.phased;
  t.lora_rank = 4;
  t.batch_docs = 4;
  t.chunk_size = 16;
  t.eval_seq_len = 64;
  t.prefix_docs = 8;
  t.num_phases = 3;
  t.global_chunk_tokens = 256;
  t.global_batch_seqs = 2;
  return c;
}

class PhasedTttParity : public ::testing::Test {
 protected:
  void SetUp() override {
    script_ = testing::official_script(dir_, testing::kPr1855Script);
    if (script_.empty()) {
      GTEST_SKIP() << "no #1855 train_gpt.py (set PGOLF_PR1855_TRAIN_GPT or PGOLF_OFFICIAL_REPO)";
    }
    if (!testing::python_has_torch()) GTEST_SKIP() << "no python3 (or $PGOLF_PYTHON) with torch";
    if (testing::shared_dir().empty()) GTEST_SKIP() << "no ../shared";
    const auto shards = testing::shared_dir() / "data" / "caseops" / "shards";
    shard_ = shards / "fineweb_val_000000.bin";
    sidecar_ = shards / "fineweb_val_bytes_000000.bin";
    if (!std::filesystem::exists(sidecar_)) GTEST_SKIP() << "no " << sidecar_;
    tokenizer_ = testing::shared_dir() / "data" / "caseops" / "tokenizers" /
                 "fineweb_8192_bpe_lossless_caps_caseops_v1_reserved.model";
  }

  void python(const std::string& tool, const std::string& args) {
    const auto run = testing::run_harness(
        tool, script_, testing::shrunk_pr1855_settings(8192) + " " + args, dir_ / (tool + ".log"));
    ASSERT_EQ(run.rc, 0) << run.command << "\n" << run.output;
  }

  ScratchDir dir_;
  std::filesystem::path script_, shard_, sidecar_, tokenizer_;
};

TEST_F(PhasedTttParity, DocumentScoresAndValBpbAreTheRecords) {
  const auto weights = dir_ / "pert.safetensors";
  python("entry_model.py", "--entry pr1855 --perturb 0.02 --perturb-seed 1 --threads 1 --save '" +
                               weights.string() + "'");
  const auto out = dir_ / "ttt.json";
  python("pr1855_ttt.py", std::string(kTttSettings) + " --weights '" + weights.string() +
                              "' --val-tokens '" + shard_.string() + "' --val-bytes '" +
                              sidecar_.string() + "' --num-tokens " + std::to_string(kTokens) +
                              " --lora-seed " + std::to_string(kLoraSeed) + " --out '" +
                              out.string() + "'");
  if (HasFatalFailure()) return;
  nlohmann::json theirs;
  std::ifstream(out) >> theirs;

  const Config config = small_config();
  GPT model(config.model);
  load_state_dict(model, read_safetensors(weights));
  model->set_looping(true);
  model->eval();
  const auto tokens = read_shard(shard_, 8192);
  const auto stream = torch::tensor(std::vector<int64_t>(tokens.begin(), tokens.begin() + kTokens));
  ByteLuts luts = build_byte_luts(Tokenizer::load(tokenizer_), 8192);
  luts.sidecar = load_validation_byte_sidecar(shard_.string(), kTokens);
  PhasedTttOptions options;
  options.ttt = config.ttt.phased;
  options.global_seq_len = 64;
  std::vector<DocumentScore> ours;
  options.document_scores = &ours;
  torch::manual_seed(kLoraSeed);
  const PhasedTttResult r = phased_lora_ttt(model, stream, luts, options);

  // The queue: the same batches, in the same order.
  const auto queue = phased_batch_queue(find_documents(stream), 4);
  ASSERT_EQ(queue.size(), theirs["queue"].size());
  for (size_t q = 0; q < queue.size(); ++q) {
    EXPECT_EQ(queue[q].order, theirs["queue"][q][0].get<int64_t>());
    std::vector<int64_t> docs;
    for (const auto& d : queue[q].docs) docs.push_back(d.index);
    EXPECT_EQ(docs, theirs["queue"][q][1].get<std::vector<int64_t>>());
  }
  // The script also runs a phase due after its last batch, which no score
  // uses; pgolf skips it.
  size_t useful = 0;
  for (const auto& phase : theirs["phases"]) {
    useful += phase["after_batches"].get<size_t>() < queue.size();
  }
  ASSERT_EQ(r.phases.size(), useful);
  for (size_t p = 0; p < r.phases.size(); ++p) {
    EXPECT_EQ(r.phases[p].documents, theirs["phases"][p]["docs"].get<int64_t>());
    EXPECT_EQ(r.phases[p].stream_tokens, theirs["phases"][p]["stream_tokens"].get<int64_t>());
  }
  // Per document: tokens and bytes exactly, the loss within fp32 tolerance.
  ASSERT_EQ(ours.size(), theirs["docs"].size());
  double worst = 0;
  for (size_t i = 0; i < ours.size(); ++i) {
    const auto& d = theirs["docs"][i];
    EXPECT_EQ(ours[i].tokens, d["tokens"].get<int64_t>()) << "document " << i;
    EXPECT_EQ(ours[i].byte_count, d["byte_sum"].get<double>()) << "document " << i;
    const double loss = d["loss_sum"].get<double>();
    worst = std::max(worst, std::abs(ours[i].loss_sum - loss) / std::abs(loss));
  }
  std::printf(
      "phased TTT parity: %zu documents, worst relative loss difference %.3g; val_bpb "
      "ours %.10f, theirs %.10f\n",
      ours.size(), worst, r.result.val_bpb, theirs["val_bpb"].get<double>());
  EXPECT_LT(worst, 2e-5);
  EXPECT_EQ(r.result.token_count, theirs["token_count"].get<int64_t>());
  EXPECT_EQ(r.result.byte_count, theirs["byte_sum"].get<double>());
  EXPECT_NEAR(r.result.val_bpb, theirs["val_bpb"].get<double>(), 1e-5);
  EXPECT_NEAR(r.result.val_loss, theirs["val_loss"].get<double>(), 2e-5);
  EXPECT_TRUE(r.legality.score_first);
}

}  // namespace
}  // namespace pgolf
