// pgolf submit RUN... --out DIR: a records/ folder for the challenge
// (workflow/submit.h).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <memory>

#include "cli/workflow/commands.h"
#include "workflow/submit.h"

namespace pgolf {
namespace {

// The checkout this binary was built from (CMakeLists.txt), copied by default.
std::filesystem::path build_source_dir() {
#ifdef PGOLF_SOURCE_ROOT
  const std::filesystem::path root = PGOLF_SOURCE_ROOT;
  if (std::filesystem::exists(root / "src") && std::filesystem::exists(root / "CMakeLists.txt"))
    return root;
#endif
  return {};
}

}  // namespace

Command add_submit_command(CLI::App& app) {
  auto o = std::make_shared<SubmitOptions>();
  auto runs = std::make_shared<std::vector<std::string>>();
  auto no_source = std::make_shared<bool>(false);
  CLI::App* sub = app.add_subcommand(
      "submit", "a record folder (README.md, submission.json, logs, code) from run folders");
  sub->add_option("runs", *runs, "run folders, one per seed")->required();
  sub->add_option("--out", o->out, "the folder to write (records/track_10min_16mb/DATE_NAME)")
      ->required();
  sub->add_option("--name", o->name, "the record's name");
  sub->add_option("--author", o->author, "your name");
  sub->add_option("--github-id", o->github_id, "your GitHub id");
  sub->add_option("--blurb", o->blurb, "one-paragraph summary (default: preset and scores)");
  sub->add_option("--track", o->track, "10min_16mb or non_record_16mb")->capture_default_str();
  sub->add_option("--against", o->against,
                  "the record to beat (run folders, its train logs, or val_loss numbers): adds "
                  "the significance test");
  sub->add_option("--min-improvement", o->min_improvement, "nats")->capture_default_str();
  sub->add_option("--source", o->source_dir,
                  "pgolf checkout to copy into DIR/pgolf (default: the one this binary was built "
                  "from)");
  sub->add_flag("--no-source", *no_source, "do not copy the source");
  sub->add_flag("--overwrite", o->overwrite, "write into a non-empty --out");
  return {sub, [o, runs, no_source] {
            if (o->source_dir.empty() && !*no_source) o->source_dir = build_source_dir();
            if (*no_source) o->source_dir.clear();
            std::vector<RunRecord> records;
            for (const auto& dir : *runs) records.push_back(load_run(dir));
            write_record_folder(records, *o);
            fmt::print("record folder: {}\n", o->out.string());
            for (const Statement& s : legality_statements(records)) {
              fmt::print("  [{}] {}\n", s.ok ? "ok" : "!!", s.text);
            }
            return 0;
          }};
}

}  // namespace pgolf
