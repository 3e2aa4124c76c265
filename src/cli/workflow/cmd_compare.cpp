// pgolf compare RUN... --against RUN...: is the candidate's mean val_loss at
// least --min-improvement nats better, at the challenge's p < 0.01?
// (workflow/stats.h). Either side may also be training logs or numbers.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <memory>

#include "cli/workflow/commands.h"
#include "common/error.h"
#include "workflow/run_record.h"
#include "workflow/stats.h"

namespace pgolf {
namespace {

struct CompareArgs {
  std::vector<std::string> runs;
  std::vector<std::string> against;
  double min_improvement = 0.005;
  double alpha = 0.01;
  bool check = false;
};

std::vector<double> print_side(const char* title, const std::vector<std::string>& specs) {
  fmt::print("{}:\n", title);
  std::vector<double> losses;
  for (const auto& spec : specs) {
    const Score s = load_score(spec);
    fmt::print("  {:<40} val_loss {:.8f}{}\n", s.label, s.val_loss,
               s.val_bpb ? fmt::format("  val_bpb {:.8f}", *s.val_bpb) : "");
    losses.push_back(s.val_loss);
  }
  const SampleStats st = sample_stats(losses);
  fmt::print("  mean {:.8f}  std {:.8f}  n {}\n", st.mean, st.std, st.n);
  return losses;
}

}  // namespace

Command add_compare_command(CLI::App& app) {
  auto a = std::make_shared<CompareArgs>();
  CLI::App* sub = app.add_subcommand(
      "compare", "mean, std and the one-sided p-value that RUNs beat --against by >= 0.005 nats");
  sub->add_option("runs", a->runs, "the candidate: run folders, training logs or val_loss numbers")
      ->required();
  sub->add_option("--against", a->against, "the record to beat: run folders, logs or numbers")
      ->required();
  sub->add_option("--min-improvement", a->min_improvement,
                  "improvement of the mean val_loss to establish, in nats")
      ->capture_default_str();
  sub->add_option("--alpha", a->alpha, "significance level")->capture_default_str();
  sub->add_flag("--check", a->check, "exit with status 1 unless significant");
  return {sub, [a] {
            const auto mine = print_side("candidate", a->runs);
            const auto theirs = print_side("against", a->against);
            const ImprovementTest t = test_improvement(mine, theirs, a->min_improvement);
            fmt::print("improvement (against - candidate): {:+.8f} nats\n", t.improvement);
            fmt::print("H0: improvement <= {} nats; {} t = {:.4f}, df = {:.2f}\n", t.threshold,
                       t.method == "welch" ? "Welch" : "one-sample", t.t, t.df);
            const bool significant = t.p_value < a->alpha;
            fmt::print("p = {:.6g}: {} at p < {}\n", t.p_value,
                       significant ? "significant" : "NOT significant", a->alpha);
            return a->check && !significant ? 1 : 0;
          }};
}

}  // namespace pgolf
