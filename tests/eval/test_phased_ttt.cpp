// #1855's phased LoRA TTT (eval/phased_ttt.h) on the tiny #1855 model and a
// made-up stream of documents: the document split, batch queue, chunk
// windows and phase boundaries as the record computes them; every target
// scored once with the sidecar's bytes; a document's first chunk scored by
// the unadapted model; the audit stopping a planted wrong order; the time
// cap; determinism. Parity with the record's own function:
// test_phased_ttt_parity.cpp.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "config/config.h"
#include "config/options.h"
#include "config/presets.h"
#include "dist/launcher.h"
#include "dist/process_group.h"
#include "eval/phased_ttt.h"
#include "model/documents.h"
#include "model/gpt.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

const std::vector<int64_t> kDocLengths = {40, 7, 95, 23, 60, 12, 130, 33, 5, 70, 18, 51};

// BOS + random tokens per document; the last document ends the stream.
torch::Tensor make_stream() {
  torch::manual_seed(3);
  std::vector<torch::Tensor> docs;
  for (int64_t len : kDocLengths) {
    auto d = torch::randint(2, 96, {len});
    d[0] = kBosId;
    docs.push_back(d);
  }
  return torch::cat(docs);
}

ByteLuts make_luts(const torch::Tensor& stream) {
  ByteLuts luts;
  luts.base_bytes = torch::ones({96}, torch::kShort);
  luts.has_leading_space = torch::zeros({96}, torch::kBool);
  luts.is_boundary = torch::zeros({96}, torch::kBool);
  luts.sidecar = torch::arange(stream.numel(), torch::kInt).mul(5).remainder(7);
  return luts;
}

GPT live_model() {
  torch::manual_seed(11);
  GPT model(testing::tiny_pr1855_config());
  torch::NoGradGuard no_grad;
  for (auto& p : model->parameters()) p.add_(torch::randn_like(p) * 0.05);
  model->eval();
  return model;
}

PhasedTttOptions small_options() {
  PhasedTttOptions o;
  PhasedTttConfig& c = o.ttt;
  c.lora_rank = 2;
  c.lora_alpha = 4;
  c.lora_lr = 3e-2;
  c.batch_docs = 3;
  c.chunk_size = 8;
  c.eval_seq_len = 24;
  c.prefix_docs = 6;
  c.num_phases = 3;
  c.global_lr = 1e-2;
  c.global_chunk_tokens = 64;
  c.global_batch_seqs = 2;
  o.global_seq_len = 16;
  return o;
}

PhasedTttResult run(GPT& model, const PhasedTttOptions& options,
                    std::vector<DocumentScore>* scores = nullptr) {
  const auto stream = make_stream();
  PhasedTttOptions o = options;
  o.document_scores = scores;
  torch::manual_seed(1234);  // the adapters' A draws
  return phased_lora_ttt(model, stream, make_luts(stream), o);
}

TEST(PhasedTtt, DocumentsEndWithTheNextBosAndTheLastWithTheStream) {
  auto stream = torch::tensor({1, 5, 6, 1, 7, 1, 8, 9, 9}, torch::kLong);
  const auto docs = find_documents(stream);
  ASSERT_EQ(docs.size(), 3u);
  EXPECT_EQ(docs[0].start, 0);
  EXPECT_EQ(docs[0].length, 4);  // 1 5 6 + the next BOS
  EXPECT_EQ(docs[1].length, 3);
  EXPECT_EQ(docs[2].start, 5);
  EXPECT_EQ(docs[2].length, 4);  // to the end, no next BOS
  int64_t targets = 0;
  for (const auto& d : docs) targets += d.targets();
  EXPECT_EQ(targets, stream.numel() - 1);
  EXPECT_PGOLF_ERROR(find_documents(torch::tensor({5, 1, 2}, torch::kLong)), "BOS");
  // A BOS at the very end is the last document's last target, not a document.
  const auto cut = find_documents(torch::tensor({1, 2, 1, 1, 3, 1}, torch::kLong));
  ASSERT_EQ(cut.size(), 3u);  // 1 2 1 | 1 1 (empty) | 1 3 1
  EXPECT_EQ(cut[1].length, 2);
  EXPECT_EQ(cut[2].length, 3);
}

TEST(PhasedTtt, QueueRunsTheBatchOfTheLongestDocumentsFirst) {
  const auto docs = find_documents(make_stream());
  const auto queue = phased_batch_queue(docs, 5);  // 12 documents: 5, 5, 2
  ASSERT_EQ(queue.size(), 3u);
  EXPECT_EQ(queue[0].order, 2);  // the two longest
  ASSERT_EQ(queue[0].docs.size(), 2u);
  EXPECT_EQ(queue[0].docs[0].length, 96);  // + the next BOS
  EXPECT_EQ(queue[0].docs[1].length, 131);
  EXPECT_EQ(queue[1].order, 1);
  EXPECT_EQ(queue[2].order, 0);
  EXPECT_EQ(queue[2].docs.front().length, 6);
}

TEST(PhasedTtt, ChunkWindowsAndPhaseBoundariesAreTheRecords) {
  // 100 targets, chunks of 48, windows of <= 64 tokens.
  auto w = phased_chunk_window(0, 100, 48, 64);
  EXPECT_EQ(w.start, 0);
  EXPECT_EQ(w.length, 48);
  EXPECT_EQ(w.scored_from, 0);
  EXPECT_EQ(w.scored, 48);
  w = phased_chunk_window(1, 100, 48, 64);
  EXPECT_EQ(w.start, 32);  // 96 - 64
  EXPECT_EQ(w.length, 64);
  EXPECT_EQ(w.scored_from, 16);
  EXPECT_EQ(w.scored, 48);
  w = phased_chunk_window(2, 100, 48, 64);  // the last: to the end
  EXPECT_EQ(w.start, 36);
  EXPECT_EQ(w.scored_from, 60);
  EXPECT_EQ(w.scored, 4);
  EXPECT_EQ(phase_boundaries(50000, 2500, 3), (std::vector<int64_t>{833, 1666, 2500}));
  EXPECT_EQ(phase_boundaries(300, 2500, 3), (std::vector<int64_t>{100, 200, 300}));
}

TEST(PhasedTtt, ScoresEveryTargetOnceWithTheSidecarsBytesAndIsScoreFirst) {
  GPT model = live_model();
  std::vector<DocumentScore> scores;
  const auto stream = make_stream();
  const PhasedTttResult r = run(model, small_options(), &scores);
  EXPECT_EQ(r.result.token_count, stream.numel() - 1);
  EXPECT_EQ(r.result.byte_count, make_luts(stream).sidecar.slice(0, 1).sum().item<double>());
  ASSERT_EQ(scores.size(), kDocLengths.size());
  double loss = 0;
  for (size_t i = 0; i < scores.size(); ++i) {
    EXPECT_EQ(scores[i].tokens, kDocLengths[i] - (i + 1 < scores.size() ? 0 : 1));
    loss += scores[i].loss_sum;
  }
  EXPECT_NEAR(loss, r.result.loss_sum, 1e-9 * std::abs(loss));
  EXPECT_TRUE(std::isfinite(r.result.val_bpb));
  EXPECT_TRUE(r.legality.score_first);
  EXPECT_EQ(r.legality.violations, 0);
  EXPECT_GT(r.lora_steps, 0);
  ASSERT_EQ(r.phases.size(), 3u);
  EXPECT_EQ(r.phases[0].documents, 2);  // boundaries 2, 4, 6 of batches of 3
  EXPECT_EQ(r.phases[2].documents, 6);
  EXPECT_GT(r.phases[2].steps, 0);
  EXPECT_EQ(r.legality.given, static_cast<int64_t>(kDocLengths.size()) - 1);  // BOS at 0 is
  // scored from the start
  // The model is left as it was found, but for the phases' weights.
  EXPECT_FALSE(model->is_training());
  EXPECT_EQ(model->adapters(), nullptr);
  for (const auto& p : model->parameters()) EXPECT_TRUE(p.requires_grad());
}

TEST(PhasedTtt, WithoutASidecarTheTablesCountTheBytes) {
  GPT model = live_model();
  const auto stream = make_stream();
  ByteLuts luts = make_luts(stream);
  luts.sidecar = torch::Tensor();
  luts.base_bytes = torch::arange(96, torch::kShort).remainder(5);
  luts.has_leading_space = torch::arange(96).remainder(3).eq(0);
  luts.is_boundary = torch::arange(96).eq(kBosId);
  torch::manual_seed(1234);
  const PhasedTttResult r = phased_lora_ttt(model, stream, luts, small_options());
  const auto x = stream.slice(0, 0, -1), y = stream.slice(0, 1);
  EXPECT_EQ(r.result.byte_count, target_bytes(luts, x, y).sum().item<double>());
}

TEST(PhasedTtt, ADocumentsFirstChunkIsScoredByTheUnadaptedModel) {
  PhasedTttOptions adapted = small_options();
  adapted.ttt.prefix_docs = 0;  // no phases: documents only see their own chunks
  PhasedTttOptions frozen = adapted;
  frozen.ttt.chunk_size = frozen.ttt.eval_seq_len = 256;  // one chunk each: never trained
  std::vector<DocumentScore> a, f;
  GPT m1 = live_model();
  const auto ra = run(m1, adapted, &a);
  GPT m2 = live_model();
  const auto rf = run(m2, frozen, &f);
  EXPECT_EQ(rf.lora_steps, 0);
  EXPECT_EQ(rf.legality.updates, 0);
  EXPECT_GT(ra.lora_steps, 0);
  // Frozen: each document is scored alone by the plain model.
  const auto stream = make_stream();
  const auto docs = find_documents(stream);
  torch::NoGradGuard no_grad;
  m2->set_document_attention(false);
  for (size_t i = 0; i < docs.size(); ++i) {
    const auto tokens = stream.slice(0, docs[i].start, docs[i].start + docs[i].length);
    const auto losses =
        m2->token_losses(tokens.slice(0, 0, -1).unsqueeze(0), tokens.slice(0, 1).unsqueeze(0));
    const double expected = losses.sum().item<double>();
    EXPECT_NEAR(f[i].loss_sum, expected, 1e-4 * std::abs(expected)) << "document " << i;
    // Adapted: a document of one chunk (<= 8 targets) is never trained on
    // before it is scored; longer ones are, from their second chunk on.
    if (docs[i].targets() <= 8) {
      EXPECT_NEAR(a[i].loss_sum, f[i].loss_sum, 1e-4 * std::abs(expected));
    } else {
      EXPECT_NE(a[i].loss_sum, f[i].loss_sum) << "document " << i;
    }
  }
}

TEST(PhasedTtt, PlantedWrongOrdersStopTheRun) {
  PhasedTttOptions early = small_options();
  early.plant = PlantedViolation::kTrainBeforeScoring;
  GPT m1 = live_model();
  EXPECT_PGOLF_ERROR(run(m1, early), "not been scored");
  PhasedTttOptions unscored = small_options();
  unscored.plant = PlantedViolation::kPhaseOnUnscoredDocument;
  GPT m2 = live_model();
  EXPECT_PGOLF_ERROR(run(m2, unscored), "global TTT phase was about to train");
}

TEST(PhasedTtt, IsDeterministicAndTheTimeCapStopsAdapting) {
  GPT m1 = live_model(), m2 = live_model();
  const auto a = run(m1, small_options()), b = run(m2, small_options());
  EXPECT_EQ(a.result.loss_sum, b.result.loss_sum);
  auto p1 = m1->parameters(), p2 = m2->parameters();
  for (size_t i = 0; i < p1.size(); ++i) EXPECT_TRUE(p1[i].equal(p2[i]));

  PhasedTttOptions capped = small_options();
  capped.max_seconds = 1e-9;
  GPT m3 = live_model();
  const auto c = run(m3, capped);
  EXPECT_TRUE(c.capped);
  EXPECT_EQ(c.lora_steps, 0);
  EXPECT_TRUE(c.phases.empty());
  EXPECT_EQ(c.result.token_count, a.result.token_count);
}

constexpr const char* kWorkerOut = "PGOLF_PHASED_TTT_WORKER_OUT";

// Two Gloo ranks take alternate batches: every target is still scored once,
// the phases fall after whole rounds, and the documents they train on are
// the ones both ranks scored.
TEST(PhasedTtt, TwoRanksScoreEveryTargetOnceAndAgreeOnThePhases) {
  testing::ScratchDir dir;
  const auto out = dir / "rank0.json";
  setenv(kWorkerOut, out.c_str(), 1);
  LaunchOptions options;
  options.kill_grace = std::chrono::milliseconds(1000);
  const int rc = launch_local_ranks(2, {"--gtest_filter=PhasedTttWorker.Rank"}, options);
  unsetenv(kWorkerOut);
  ASSERT_EQ(rc, 0) << "a rank failed: see its output above";
  nlohmann::json r;
  std::ifstream(out) >> r;
  const auto stream = make_stream();
  EXPECT_EQ(r["token_count"].get<int64_t>(), stream.numel() - 1);
  EXPECT_EQ(r["byte_count"].get<double>(),
            make_luts(stream).sidecar.slice(0, 1).sum().item<double>());
  EXPECT_TRUE(r["legality"]["score_first"].get<bool>());
  // Batches of 2: rounds of 4 documents; the third phase would follow the
  // last round, where no score could use it.
  ASSERT_EQ(r["phases"].size(), 2u);
  EXPECT_EQ(r["phases"][0]["scored_documents"].get<int64_t>(), 4);
  EXPECT_EQ(r["phases"][0]["documents"].get<int64_t>(), 2);
  EXPECT_EQ(r["phases"][1]["scored_documents"].get<int64_t>(), 8);
  EXPECT_EQ(r["phases"][1]["documents"].get<int64_t>(), 4);
}

TEST(PhasedTttWorker, Rank) {
  const char* out = std::getenv(kWorkerOut);
  if (!out) GTEST_SKIP() << "one rank of PhasedTtt.TwoRanks*";
  DistOptions options;
  options.connect_timeout = std::chrono::seconds(20);
  options.op_timeout = std::chrono::seconds(60);
  ProcessGroup group(dist_env_from_environment(), torch::kCPU, options);
  GPT model = live_model();
  PhasedTttOptions o = small_options();
  o.ttt.batch_docs = 2;
  o.group = &group;
  const PhasedTttResult r = run(model, o);
  if (group.master()) std::ofstream(out) << r.to_json().dump();
}

TEST(PhasedTtt, ConfigIsTheRecordsRunAndChecked) {
  const Config c = preset("pr1855");
  EXPECT_EQ(c.ttt.mode, TttMode::kPhased);
  EXPECT_EQ(c.ttt.phased.lora_rank, 80);
  EXPECT_EQ(c.ttt.phased.weight_decay, 0.5);
  EXPECT_EQ(c.ttt.phased.beta2, 0.99);
  EXPECT_EQ(c.ttt.phased.prefix_docs, 2500);
  EXPECT_EQ(c.ttt.max_seconds, 600);
  EXPECT_EQ(preset("pr1855-cpu").ttt.phased.eval_seq_len, 256);
  Config bad = c;
  bad.ttt.phased.eval_seq_len = 16;
  EXPECT_PGOLF_ERROR(bad.ttt.validate(), "TTT_EVAL_SEQ_LEN=16");
  bad = c;
  bad.ttt.phased.num_phases = 0;
  EXPECT_PGOLF_ERROR(bad.ttt.validate(), "PHASED_TTT_NUM_PHASES");
}

}  // namespace
}  // namespace pgolf
