// The pgolf binary itself: exit codes, one-line errors, and the inspect output.
#include <gtest/gtest.h>

#include <fstream>

#include "tests/test_util.h"

namespace pgolf {
namespace {

using testing::CliRun;
using testing::run_pgolf;

TEST(Cli, InspectBaselinePrintsReferenceParameterCount) {
  const CliRun r = run_pgolf("inspect --preset baseline");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("model_params:17059912"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("blocks.8.mlp.proj.weight"), std::string::npos);
}

TEST(Cli, ImpossibleConfigIsOneClearError) {
  const CliRun r = run_pgolf("inspect --preset baseline --num-heads 3");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("pgolf: error: MODEL_DIM=512 must be divisible by NUM_HEADS=3"),
            std::string::npos)
      << r.output;
}

TEST(Cli, MissingArtifactIsOneClearError) {
  const CliRun r = run_pgolf("eval /nonexistent/model.pgolf --val '/nonexistent/*.bin'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("pgolf: error:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("/nonexistent/model.pgolf"), std::string::npos) << r.output;
}

TEST(Cli, ForeignFileAsArtifactIsOneClearError) {
  testing::ScratchDir scratch;
  std::ofstream(scratch / "foreign.bin") << "this is not an artifact at all, just text";
  const CliRun r = run_pgolf("eval " + (scratch / "foreign.bin").string());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("not a pgolf artifact"), std::string::npos) << r.output;
}

TEST(Cli, EvalNeedsExactlyOneModelSource) {
  const CliRun r = run_pgolf("eval");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("give exactly one of ARTIFACT or --weights FILE"), std::string::npos);
}

TEST(Cli, BenchRejectsCountsItCannotTime) {
  for (const char* flags : {"--steps 0", "--repeats 0", "--warmup -1", "--eval-batches -2"}) {
    const CliRun r = run_pgolf(std::string("bench --presets cpu ") + flags);
    EXPECT_NE(r.exit_code, 0) << flags;
    EXPECT_NE(r.output.find(std::string(flags).substr(0, std::string(flags).find(' '))),
              std::string::npos)
        << flags << ": " << r.output;
  }
}

TEST(Cli, UnknownFlagIsRejected) {
  const CliRun r = run_pgolf("train --no-such-flag 1");
  EXPECT_NE(r.exit_code, 0);
}

}  // namespace
}  // namespace pgolf
