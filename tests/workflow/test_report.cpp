// `pgolf report`: the page's content from fake run folders, and that it
// renders: headless Chromium takes a screenshot of it, which must show the
// charts (skipped when chromium is not installed).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstdlib>

#include "common/fs.h"
#include "tests/test_util.h"
#include "tests/workflow/fake_run.h"
#include "tests/workflow/png_probe.h"
#include "workflow/artifact_groups.h"
#include "workflow/report.h"
#include "workflow/run_record.h"
#include "workflow/svg.h"

namespace pgolf {
namespace {

size_t count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

TEST(RunRecord, ReadsWhatTheTrainerWrites) {
  testing::ScratchDir scratch;
  const auto dir = testing::write_fake_run(scratch.path(), {.name = "a", .seed = 42});
  const RunRecord run = load_run(dir);
  EXPECT_EQ(run.name, "a");
  EXPECT_EQ(run.config.train.seed, 42);
  EXPECT_EQ(run.train.size(), 10u);  // the torn last line is skipped
  EXPECT_EQ(run.val.size(), 3u);
  EXPECT_EQ(run.val[1].tokens, 50 * 4096);
  EXPECT_DOUBLE_EQ(run.val_loss(), 3.5);
  EXPECT_FALSE(run.artifact_path().empty());
  const auto phases = phase_times(run);
  ASSERT_EQ(phases.size(), 3u);
  EXPECT_EQ(phases[0].name, "training");
  EXPECT_DOUBLE_EQ(phases[1].seconds, 2.4);  // three validations of 0.8 s
  EXPECT_EQ(phases[2].name, "round-trip eval");
  EXPECT_PGOLF_ERROR(load_run(scratch / "missing"), "not a run folder");
  std::filesystem::create_directories(scratch / "empty");
  EXPECT_PGOLF_ERROR(load_run(scratch / "empty"), "no config.json");
  const RunRecord unfinished =
      load_run(testing::write_fake_run(scratch.path(), {.name = "b", .finished = false}));
  EXPECT_PGOLF_ERROR(unfinished.val_loss(), "did not finish");
}

TEST(RunRecord, TheFinalScoreIsTheLastEvaluation) {
  testing::ScratchDir scratch;
  auto final_of = [&](const std::string& kind) {
    return load_run(testing::write_fake_run(scratch.path(), {.name = kind, .evaluation = kind}))
        .final_score();
  };
  const FinalScore roundtrip = final_of("roundtrip");
  EXPECT_EQ(roundtrip.name, "roundtrip");
  EXPECT_DOUBLE_EQ(roundtrip.val_loss, 3.5);
  EXPECT_DOUBLE_EQ(roundtrip.eval_seconds, 1.2);
  const FinalScore sliding = final_of("sliding");
  EXPECT_EQ(sliding.name, "sliding_window");
  EXPECT_DOUBLE_EQ(sliding.val_loss, 3.48);
  EXPECT_DOUBLE_EQ(sliding.eval_seconds, 1.2 + 4.0);
  const FinalScore ttt = final_of("ttt");
  EXPECT_EQ(ttt.name, "legal_ttt");
  EXPECT_DOUBLE_EQ(ttt.val_loss, 3.47);
  EXPECT_DOUBLE_EQ(ttt.eval_seconds, 1.2 + 4.0 + 30.0);
  EXPECT_TRUE(ttt.score_first);
  EXPECT_TRUE(ttt.non_compliant.empty());
  const FinalScore cheat = final_of("postquant");
  EXPECT_FALSE(cheat.score_first);
  ASSERT_EQ(cheat.non_compliant.size(), 1u);
  EXPECT_DOUBLE_EQ(cheat.eval_seconds, 1.2 + 60.0 + 4.0);
  const auto phases = phase_times(load_run(scratch / "ttt"));
  ASSERT_EQ(phases.size(), 5u);
  EXPECT_EQ(phases[3].name, "sliding-window eval");
  EXPECT_EQ(phases[4].name, "TTT eval");
  EXPECT_DOUBLE_EQ(phases[4].seconds, 30.0);
}

TEST(RunRecord, ScoresFromRunsLogsAndNumbers) {
  testing::ScratchDir scratch;
  const auto dir = testing::write_fake_run(scratch.path(), {.final_val_loss = 2.5});
  EXPECT_DOUBLE_EQ(load_score(dir.string()).val_loss, 2.5);
  EXPECT_NEAR(*load_score((dir / "train.log").string()).val_bpb, 1.5, 1e-8);
  EXPECT_DOUBLE_EQ(load_score("2.07269931").val_loss, 2.07269931);
  EXPECT_PGOLF_ERROR(load_score("nonsense"), "not a run folder, a training log or a val_loss");
  write_file_atomic(scratch / "x.log", "nothing here\n");
  EXPECT_PGOLF_ERROR(load_score((scratch / "x.log").string()), "no `..._exact val_loss:X`");
  // The records' logs end with several exact lines; the last one is the score.
  const auto score = score_from_log(
      "final_int8_zlib_roundtrip_exact val_loss:2.07269931 val_bpb:1.22436570\n"
      "final_int6_sliding_window_exact val_loss:1.93000000 val_bpb:1.14300000\n");
  ASSERT_TRUE(score.has_value());
  EXPECT_DOUBLE_EQ(score->val_loss, 1.93);
  EXPECT_EQ(score->label, "final_int6_sliding_window_exact");
}

TEST(ArtifactGroups, NamesAndShares) {
  EXPECT_EQ(tensor_group("tok_emb.weight"), "token embedding");
  EXPECT_EQ(tensor_group("blocks.3.attn.c_q.weight"), "attention");
  EXPECT_EQ(tensor_group("blocks.3.attn.q_gain"), "scalars & control");
  EXPECT_EQ(tensor_group("blocks.0.mlp.fc.weight"), "MLP");
  EXPECT_EQ(tensor_group("mlp_up_bank"), "MLP");
  EXPECT_EQ(tensor_group("bigram.embed.weight"), "n-gram & value embeddings");
  EXPECT_EQ(tensor_group("lm_head.weight"), "head");
  EXPECT_EQ(tensor_group("skip_weights"), "scalars & control");
  testing::ScratchDir scratch;
  const RunRecord run = load_run(testing::write_fake_run(scratch.path(), {}));
  const auto groups = size_by_group(inspect_artifact(read_artifact(run.artifact_path())));
  double total = 0;
  for (const auto& g : groups) total += g.compressed_bytes;
  EXPECT_NEAR(total, static_cast<double>(std::filesystem::file_size(run.artifact_path())), 1e-6);
  EXPECT_EQ(groups.front().name, "token embedding");
  EXPECT_EQ(groups.back().name, "header");
}

TEST(Svg, ChartsEscapeAndScale) {
  const std::string chart = line_chart_svg(
      {"loss <a&b>", "step", "loss"},
      {Series{"run 1", "#123456", {{0, 1}, {10, 0.5}}}, Series{"run 2", "#654321", {{0, 2}}}});
  EXPECT_NE(chart.find("loss &lt;a&amp;b&gt;"), std::string::npos);
  EXPECT_NE(chart.find("stroke=\"#123456\""), std::string::npos);
  EXPECT_EQ(chart.find("NaN"), std::string::npos);
  EXPECT_NE(line_chart_svg({"empty", "", ""}, {}).find("no data"), std::string::npos);
  EXPECT_EQ(compact_number(1'500'000), "1.5M");
  EXPECT_EQ(compact_number(0.25), "0.25");
  const std::string bars = stacked_bar_svg({"t", "", ""}, {"a", "b"}, {"#f00", "#0f0"},
                                           {BarRow{"run", {1.0, 3.0}}}, "s");
  EXPECT_NE(bars.find("4 s"), std::string::npos) << bars;
}

TEST(Report, OverlaysRunsInOnePage) {
  testing::ScratchDir scratch;
  const auto a = testing::write_fake_run(scratch.path(), {.name = "seed1337", .seed = 1337});
  const auto b = testing::write_fake_run(scratch.path(),
                                         {.name = "seed42", .seed = 42, .final_val_loss = 3.4});
  const auto c = testing::write_fake_run(scratch.path(), {.name = "killed", .finished = false});
  const std::string html = render_report({load_run(a), load_run(b), load_run(c)}, {"my runs"});
  EXPECT_EQ(count(html, "<svg"), 10u);  // 3 train loss, 3 val_bpb, LR, momentum, phases, sizes
  for (const char* needle :
       {"<title>my runs</title>", "train loss vs step", "train loss vs tokens",
        "train loss vs training time (s)", "val_bpb vs tokens", "Muon LR (MATRIX_LR x schedule)",
        "Muon momentum", "Time per phase", "round-trip eval", "Artifact size by tensor group",
        "token embedding", "mean ± std (2 runs)", "3.45000000 ± 0.07071068", "(unfinished)",
        "seed1337", "seed42", "killed"}) {
    EXPECT_NE(html.find(needle), std::string::npos) << needle;
  }
  EXPECT_EQ(html.find("href=\"http"), std::string::npos);  // nothing to fetch
  EXPECT_EQ(html.find("src=\"http"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_PGOLF_ERROR(render_report({}), "at least one run");
}

TEST(Report, RendersInHeadlessChromium) {
  if (std::system("command -v chromium > /dev/null 2>&1") != 0) {
    GTEST_SKIP() << "chromium not installed (scripts/setup.sh installs it)";
  }
  testing::ScratchDir scratch;
  const auto a = testing::write_fake_run(scratch.path(), {.name = "seed1337", .seed = 1337});
  const auto b = testing::write_fake_run(scratch.path(),
                                         {.name = "seed42", .seed = 42, .final_val_loss = 3.4});
  const auto html = scratch / "report.html";
  const auto run = testing::run_pgolf(
      fmt::format("report {} {} --out {}", a.string(), b.string(), html.string()));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("report: " + html.string() + " (2 runs"), std::string::npos);
  const auto png = scratch / "shot.png";
  const std::string command = fmt::format(
      "timeout 120 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars "
      "--user-data-dir={} --window-size=1280,1800 --screenshot={} file://{} > {} 2>&1",
      (scratch / "profile").string(), png.string(), html.string(),
      (scratch / "chromium.log").string());
  ASSERT_EQ(std::system(command.c_str()), 0) << read_file(scratch / "chromium.log");
  ASSERT_TRUE(std::filesystem::exists(png));
  const testing::PngProbe probe = testing::probe_png(png);
  EXPECT_EQ(probe.width, 1280);
  EXPECT_EQ(probe.height, 1800);
  EXPECT_GT(probe.non_white, 0.02) << "the screenshot is (nearly) blank";
  EXPECT_GT(probe.colored, 2000) << "no coloured chart lines or bars on screen";
}

}  // namespace
}  // namespace pgolf
