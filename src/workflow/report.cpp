#include "workflow/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <functional>
#include <tuple>

#include "artifact/artifact.h"
#include "artifact/inspect.h"
#include "common/error.h"
#include "common/format.h"
#include "common/progress.h"
#include "workflow/artifact_groups.h"
#include "workflow/stats.h"
#include "workflow/svg.h"

namespace pgolf {
namespace {

constexpr const char* kStyle = R"(
body { font-family: sans-serif; margin: 24px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
.grid { display: flex; flex-wrap: wrap; gap: 12px; }
.note { color: #666; font-size: 12px; }
)";

// One series per run, points picked by `point`.
template <typename Point>
std::vector<Series> per_run(
    const std::vector<RunRecord>& runs,
    const std::function<const std::vector<Point>&(const RunRecord&)>& list,
    const std::function<std::pair<double, double>(const RunRecord&, const Point&)>& point,
    bool markers) {
  std::vector<Series> out;
  for (size_t i = 0; i < runs.size(); ++i) {
    Series s{runs[i].name, palette(i), {}, markers};
    for (const Point& p : list(runs[i])) s.points.push_back(point(runs[i], p));
    out.push_back(std::move(s));
  }
  return out;
}

std::string curves(const std::vector<RunRecord>& runs) {
  const std::function<const std::vector<TrainPoint>&(const RunRecord&)> train =
      [](const RunRecord& r) -> const std::vector<TrainPoint>& { return r.train; };
  const std::function<const std::vector<ValPoint>&(const RunRecord&)> val =
      [](const RunRecord& r) -> const std::vector<ValPoint>& { return r.val; };
  std::string out = "<h2>Curves</h2>\n<div class=\"grid\">\n";
  using TrainX = std::function<double(const TrainPoint&)>;
  using ValX = std::function<double(const ValPoint&)>;
  const std::vector<std::tuple<std::string, TrainX, ValX>> axes = {
      {"step", [](const TrainPoint& p) { return static_cast<double>(p.step); },
       [](const ValPoint& p) { return static_cast<double>(p.step); }},
      {"tokens", [](const TrainPoint& p) { return static_cast<double>(p.tokens); },
       [](const ValPoint& p) { return static_cast<double>(p.tokens); }},
      {"training time (s)", [](const TrainPoint& p) { return p.train_time_ms / 1000.0; },
       [](const ValPoint& p) { return p.train_time_ms / 1000.0; }}};
  for (const auto& axis : axes) {
    const TrainX& x = std::get<1>(axis);
    out += line_chart_svg(
        {"train loss vs " + std::get<0>(axis), std::get<0>(axis), "train loss (nats)"},
        per_run<TrainPoint>(
            runs, train,
            [&](const RunRecord&, const TrainPoint& p) {
              return std::pair{x(p), p.train_loss};
            },
            false));
  }
  for (const auto& axis : axes) {
    const ValX& x = std::get<2>(axis);
    out += line_chart_svg({"val_bpb vs " + std::get<0>(axis), std::get<0>(axis), "val_bpb"},
                          per_run<ValPoint>(
                              runs, val,
                              [&](const RunRecord&, const ValPoint& p) {
                                return std::pair{x(p), p.val_bpb};
                              },
                              true));
  }
  return out + "</div>\n";
}

std::string schedules(const std::vector<RunRecord>& runs) {
  const std::function<const std::vector<TrainPoint>&(const RunRecord&)> train =
      [](const RunRecord& r) -> const std::vector<TrainPoint>& { return r.train; };
  std::string out = "<h2>Schedules</h2>\n<div class=\"grid\">\n";
  out += line_chart_svg(
      {"Muon LR (MATRIX_LR x schedule)", "step", "learning rate"},
      per_run<TrainPoint>(
          runs, train,
          [](const RunRecord& r, const TrainPoint& p) {
            return std::pair{static_cast<double>(p.step), p.lr_scale * r.config.train.matrix_lr};
          },
          false));
  out += line_chart_svg({"Muon momentum", "step", "momentum"},
                        per_run<TrainPoint>(
                            runs, train,
                            [](const RunRecord&, const TrainPoint& p) {
                              return std::pair{static_cast<double>(p.step), p.muon_momentum};
                            },
                            false));
  out +=
      "</div>\n<p class=\"note\">Learning rates of the Adam groups follow the same schedule "
      "(their base LR x the plotted multiplier / MATRIX_LR). Points are the logged steps "
      "(TRAIN_LOG_EVERY).</p>\n";
  return out;
}

std::string phases(const std::vector<RunRecord>& runs) {
  std::vector<std::string> names;
  for (const auto& run : runs) {
    for (const Phase& p : phase_times(run)) {
      if (std::find(names.begin(), names.end(), p.name) == names.end()) names.push_back(p.name);
    }
  }
  std::vector<std::string> colors;
  for (size_t i = 0; i < names.size(); ++i) colors.push_back(palette(i + 2));
  std::vector<BarRow> rows;
  for (const auto& run : runs) {
    BarRow row{run.name, std::vector<double>(names.size(), 0.0)};
    for (const Phase& p : phase_times(run)) {
      row.values[std::find(names.begin(), names.end(), p.name) - names.begin()] = p.seconds;
    }
    rows.push_back(row);
  }
  return "<h2>Time per phase</h2>\n" +
         stacked_bar_svg({"seconds per phase", "", "", 760, 0}, names, colors, rows, "s") +
         "<p class=\"note\">training: the challenge's clock (validation excluded); validation: "
         "every evaluation during training; round-trip eval: the artifact's score.</p>\n";
}

std::string sizes(const std::vector<RunRecord>& runs) {
  std::vector<std::string> names;
  std::vector<BarRow> rows;
  std::string table =
      "<table><tr><th>run</th><th>group</th><th>tensors</th><th>parameters</th>"
      "<th>stored bytes</th><th>compressed (est.)</th></tr>\n";
  for (const auto& run : runs) {
    const auto path = run.artifact_path();
    if (path.empty()) continue;
    const ArtifactReport report = inspect_artifact(read_artifact(path));
    const std::vector<SizeGroup> groups = size_by_group(report);
    BarRow row{run.name, {}};
    for (const SizeGroup& g : groups) {
      auto at = std::find(names.begin(), names.end(), g.name);
      if (at == names.end()) at = names.insert(names.end(), g.name);
      const auto index = static_cast<size_t>(at - names.begin());
      if (row.values.size() <= index) row.values.resize(index + 1, 0.0);
      row.values[index] = g.compressed_bytes;
      table += fmt::format(
          "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
          xml_escape(run.name), xml_escape(g.name), g.tensors, with_commas(g.params),
          with_commas(g.stored_bytes), with_commas(static_cast<int64_t>(g.compressed_bytes + 0.5)));
    }
    rows.push_back(row);
  }
  if (rows.empty())
    return "<h2>Artifact size by tensor group</h2>\n<p>No artifact in the run folders.</p>\n";
  for (auto& row : rows) row.values.resize(names.size(), 0.0);
  std::vector<std::string> colors;
  for (size_t i = 0; i < names.size(); ++i) colors.push_back(palette(i));
  return "<h2>Artifact size by tensor group</h2>\n" +
         stacked_bar_svg(
             {"artifact bytes by tensor group (compressed, estimated pro rata)", "", "", 760, 0},
             names, colors, rows, "B") +
         table + "</table>\n";
}

std::string fmt_opt(const nlohmann::json& j, const char* a, const char* b, const char* spec) {
  if (!j.contains(a) || !j[a].contains(b)) return "–";
  return fmt::format(fmt::runtime(spec), j[a][b].get<double>());
}

// The final score's name, marked when the evaluation broke a rule.
std::string score_label(const RunRecord& run) {
  const FinalScore f = run.final_score();
  if (f.non_compliant.empty() && f.score_first) return f.name;
  return f.name + " <b>NON-COMPLIANT</b>";
}

std::string final_table(const std::vector<RunRecord>& runs) {
  std::string out =
      "<h2>Final results</h2>\n<table><tr><th>run</th><th>preset</th><th>seed</th>"
      "<th>steps</th><th>train time</th><th>pre-export val_bpb</th><th>round-trip val_bpb</th>"
      "<th>score</th><th>val_loss</th><th>val_bpb</th><th>artifact bytes</th><th>code bytes</th>"
      "<th>total bytes</th><th>fits 16 MB</th></tr>\n";
  std::vector<double> losses, bpbs;
  for (const auto& run : runs) {
    const auto& r = run.results;
    const bool done = run.finished();
    out += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
        "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
        xml_escape(run.name), xml_escape(run.config.preset), run.config.train.seed,
        done ? with_commas(r.value("steps", int64_t{0}))
             : (run.train.empty() ? "–" : with_commas(run.train.back().step) + " (unfinished)"),
        done ? fmt::format("{:.1f} s", r.value("train_time_ms", 0.0) / 1000.0) : "–",
        fmt_opt(r, "pre_export", "val_bpb", "{:.4f}"), fmt_opt(r, "roundtrip", "val_bpb", "{:.8f}"),
        done ? score_label(run) : "–", done ? fmt::format("{:.8f}", run.val_loss()) : "–",
        done ? fmt::format("{:.8f}", run.val_bpb()) : "–",
        done ? with_commas(r.value("artifact_bytes", int64_t{0})) : "–",
        done ? with_commas(r.value("code_bytes", int64_t{0})) : "–",
        done ? with_commas(r.value("total_bytes", int64_t{0})) : "–",
        done ? (r.value("fits_cap", false) ? "yes" : "NO") : "–");
    if (done) {
      losses.push_back(run.val_loss());
      bpbs.push_back(run.val_bpb());
    }
  }
  if (losses.size() >= 2) {
    const SampleStats l = sample_stats(losses);
    const SampleStats b = sample_stats(bpbs);
    out += fmt::format(
        "<tr><th>mean ± std ({} runs)</th><td colspan=\"7\"></td><td>{:.8f} ± {:.8f}</td>"
        "<td>{:.8f} ± {:.8f}</td><td colspan=\"4\"></td></tr>\n",
        l.n, l.mean, l.std, b.mean, b.std);
  }
  return out + "</table>\n";
}

}  // namespace

std::string render_report(const std::vector<RunRecord>& runs, const ReportOptions& options) {
  PGOLF_CHECK(!runs.empty(), "pgolf report: give at least one run folder");
  std::string runs_list;
  for (const auto& run : runs) {
    runs_list += fmt::format("<li><b>{}</b> ({}): {}</li>\n", xml_escape(run.name),
                             xml_escape(run.dir.string()),
                             xml_escape(run.finished() ? "finished" : "unfinished"));
  }
  return fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>{0}</title>\n"
      "<style>{1}</style></head>\n<body>\n<h1>{0}</h1>\n<p class=\"note\">pgolf {2}, {3}</p>\n"
      "<ul>\n{4}</ul>\n{5}{6}{7}{8}{9}</body></html>\n",
      xml_escape(options.title), kStyle, kPgolfVersion, now_string(TimeFormat::kMinute), runs_list,
      final_table(runs), curves(runs), schedules(runs), phases(runs), sizes(runs));
}

}  // namespace pgolf
