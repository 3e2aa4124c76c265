// pgolf report RUN [RUN...] --out FILE.html: one self-contained page about the
// runs, overlaid (workflow/report.h).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <memory>

#include "cli/workflow/commands.h"
#include "common/fs.h"
#include "workflow/report.h"

namespace pgolf {
namespace {

struct ReportArgs {
  std::vector<std::string> runs;
  std::string out = "report.html";
  ReportOptions options;
};

}  // namespace

Command add_report_command(CLI::App& app) {
  auto a = std::make_shared<ReportArgs>();
  CLI::App* sub = app.add_subcommand(
      "report", "HTML page of run folders: curves, schedules, time per phase, artifact bytes");
  sub->add_option("runs", a->runs, "run folders (runs/ID); several are overlaid")->required();
  sub->add_option("--out", a->out, "the HTML file to write")->capture_default_str();
  sub->add_option("--title", a->options.title, "page title")->capture_default_str();
  return {sub, [a] {
            std::vector<RunRecord> runs;
            for (const auto& dir : a->runs) runs.push_back(load_run(dir));
            const std::string html = render_report(runs, a->options);
            write_file_atomic(a->out, html);
            fmt::print("report: {} ({} run{}, {} bytes)\n", a->out, runs.size(),
                       runs.size() == 1 ? "" : "s", html.size());
            return 0;
          }};
}

}  // namespace pgolf
