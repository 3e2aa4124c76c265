// `pgolf eval ARTIFACT` with sliding windows and score-first TTT, alone and
// over two local ranks (the same numbers), and the NON-COMPLIANT mode behind
// its flag, marked in the output and the results file.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

constexpr const char* kTtt =
    "--ttt-mode sgd --ttt-chunk-tokens 2048 --ttt-batch-seqs 32 --ttt-lr 0.02 --ttt-epochs 1";

std::string eval_args(const testing::ScratchDir& scratch, const std::string& results,
                      const std::string& ttt = kTtt) {
  const auto data = testing::shared_dir() / "data";
  return fmt::format(
      "eval {} --val '{}' --tokenizer {} --val-max-tokens 16384 --eval-stride 16 "
      "--eval-batch-seqs 32 {} --threads 1 --quiet --results {}",
      (testing::trained_tiny_run() / "final_model.int8.pgolf").string(),
      (data / "shards" / "fineweb_val_*.bin").string(), testing::official_tokenizer().string(), ttt,
      (scratch / results).string());
}

TEST(EvalEndToEnd, SlidingAndTttAloneAndOnTwoRanks) {
  PGOLF_REQUIRE_SHARED();
  testing::ScratchDir scratch;
  const auto one = testing::run_pgolf(eval_args(scratch, "one.json"));
  ASSERT_EQ(one.exit_code, 0) << one.output;
  for (const char* line :
       {"final_int8_zlib_roundtrip_exact val_loss:", "final_int8_zlib_sliding_window val_loss:",
        "stride:16 eval_time:", "final_int8_zlib_sliding_window_exact val_loss:",
        "ttt_sliding:start chunks=8 chunk_tokens=2048", "ttt_sliding:done",
        "ttt_legality: score_first:1 chunks:8 trained:7",
        "legal_ttt val_loss:", "legal_ttt_exact val_loss:"}) {
    EXPECT_NE(one.output.find(line), std::string::npos) << line << "\n" << one.output;
  }
  const auto r1 = nlohmann::json::parse(read_file(scratch / "one.json"));
  EXPECT_TRUE(r1["score_first"].get<bool>());
  EXPECT_FALSE(r1.contains("non_compliant"));
  const double plain = r1["plain"]["val_bpb"], sliding = r1["sliding"]["val_bpb"],
               ttt = r1["ttt"]["val_bpb"];
  EXPECT_LT(sliding, plain);
  EXPECT_LT(ttt, sliding);

  const auto two = testing::run_pgolf(eval_args(scratch, "two.json") + " --nproc 2");
  ASSERT_EQ(two.exit_code, 0) << two.output;
  const auto r2 = nlohmann::json::parse(read_file(scratch / "two.json"));
  // Sequences batch differently over two ranks: fp32 batch means differ in the last bits.
  EXPECT_NEAR(r2["plain"]["val_bpb"].get<double>(), plain, 1e-6);
  EXPECT_NEAR(r2["sliding"]["val_bpb"].get<double>(), sliding, 1e-9);
  EXPECT_NEAR(r2["ttt"]["val_bpb"].get<double>(), ttt, 2e-4);
  EXPECT_TRUE(r2["ttt"]["legality"]["score_first"].get<bool>());
}

TEST(EvalEndToEnd, NonCompliantModeNeedsItsFlagAndIsMarked) {
  PGOLF_REQUIRE_SHARED();
  testing::ScratchDir scratch;
  const auto refused = testing::run_pgolf(eval_args(scratch, "r.json") + " --val-adapt postquant");
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.output.find("ALLOW_NON_COMPLIANT=1"), std::string::npos) << refused.output;

  const auto run =
      testing::run_pgolf(eval_args(scratch, "nc.json",
                                   "--ttt-mode none --val-adapt postquant --val-adapt-epochs 1 "
                                   "--allow-non-compliant"));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("WARNING: NON-COMPLIANT"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("final_int8_zlib_sliding_window_exact val_loss:"), std::string::npos);
  EXPECT_NE(run.output.find("NON_COMPLIANT"), std::string::npos);
  const auto r = nlohmann::json::parse(read_file(scratch / "nc.json"));
  EXPECT_FALSE(r["score_first"].get<bool>());
  ASSERT_TRUE(r.contains("non_compliant"));
  EXPECT_FALSE(r["val_adapt"]["legality"]["score_first"].get<bool>());
}

}  // namespace
}  // namespace pgolf
