#include "workflow/run_record.h"

#include <fmt/format.h>

#include <charconv>
#include <sstream>

#include "common/error.h"
#include "common/fs.h"

namespace pgolf {
namespace {

nlohmann::json parse_json_file(const std::filesystem::path& path) {
  try {
    return nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    fail("{}: not valid JSON ({})", path.string(), e.what());
  }
}

double number(const nlohmann::json& j, const char* key) {
  return j.contains(key) && j[key].is_number() ? j[key].get<double>() : 0.0;
}

// A run killed mid-write leaves a torn last line: it is skipped, not fatal.
void read_metrics(const std::filesystem::path& path, RunRecord& run) {
  std::istringstream lines(read_file(path));
  std::string line;
  while (std::getline(lines, line)) {
    const auto event = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!event.is_object()) continue;
    const std::string kind = event.value("event", "");
    if (kind == "train") {
      run.train.push_back(TrainPoint{event.value("step", int64_t{0}),
                                     event.value("tokens", int64_t{0}), number(event, "train_loss"),
                                     number(event, "train_time_ms"), number(event, "lr_scale"),
                                     number(event, "muon_momentum")});
    } else if (kind == "val") {
      const int64_t step = event.value("step", int64_t{0});
      run.val.push_back(ValPoint{step, step * run.config.train.train_batch_tokens,
                                 number(event, "val_loss"), number(event, "val_bpb"),
                                 number(event, "train_time_ms"), number(event, "eval_time_ms")});
    } else if (kind == "final" && event.contains("results") && run.results.empty()) {
      run.results = event["results"];
    }
  }
}

std::optional<double> value_after(const std::string& line, const std::string& key) {
  const size_t at = line.find(key);
  if (at == std::string::npos) return std::nullopt;
  const char* begin = line.c_str() + at + key.size();
  double value = 0;
  const auto [end, ec] = std::from_chars(begin, line.c_str() + line.size(), value);
  if (ec != std::errc() || end == begin) return std::nullopt;
  return value;
}

}  // namespace

FinalScore RunRecord::final_score() const {
  PGOLF_CHECK(finished(), "{}: the run has no results.json (it did not finish)", dir.string());
  const auto& roundtrip = results.at("roundtrip");
  const auto& evaluation = results.value("evaluation", nlohmann::json::object());
  FinalScore score;
  score.name = "roundtrip";
  score.val_loss = roundtrip.at("val_loss").get<double>();
  score.val_bpb = roundtrip.at("val_bpb").get<double>();
  score.eval_seconds = number(roundtrip, "eval_time_ms") / 1e3;
  if (evaluation.contains("val_adapt")) {
    score.eval_seconds += number(evaluation["val_adapt"], "seconds");
  }
  for (const char* name : {"sliding", "ttt", "ttt_phased"}) {
    if (!evaluation.contains(name)) continue;
    const auto& e = evaluation[name];
    const std::string n = name;
    score.name = n == "sliding" ? "sliding_window" : n == "ttt" ? "legal_ttt" : "legal_ttt_phased";
    score.val_loss = e.at("val_loss").get<double>();
    score.val_bpb = e.at("val_bpb").get<double>();
    score.eval_seconds += number(e, "eval_seconds");
  }
  score.score_first = evaluation.value("score_first", true);
  score.non_compliant = evaluation.value("non_compliant", std::vector<std::string>{});
  return score;
}

std::filesystem::path RunRecord::artifact_path() const {
  if (!results.contains("artifact")) return {};
  const auto path = dir / results["artifact"].get<std::string>();
  return std::filesystem::exists(path) ? path : std::filesystem::path{};
}

std::vector<Phase> phase_times(const RunRecord& run) {
  std::vector<Phase> phases;
  auto add = [&](const char* name, double ms) {
    if (ms > 0) phases.push_back(Phase{name, ms / 1000.0});
  };
  double training_ms = run.results.value("train_time_ms", 0.0);
  if (training_ms == 0 && !run.train.empty()) training_ms = run.train.back().train_time_ms;
  add("training", training_ms);
  double validation_ms = 0;
  for (const ValPoint& v : run.val) validation_ms += v.eval_time_ms;
  add("validation", validation_ms);
  const auto& exported = run.results.value("export", nlohmann::json::object());
  if (exported.contains("gptq"))
    add("GPTQ calibration", number(exported["gptq"], "calibration_ms"));
  if (run.results.contains("roundtrip")) {
    add("round-trip eval", number(run.results["roundtrip"], "eval_time_ms"));
  }
  const auto& evaluation = run.results.value("evaluation", nlohmann::json::object());
  if (evaluation.contains("val_adapt")) {
    add("val adaptation (non-compliant)", 1e3 * number(evaluation["val_adapt"], "seconds"));
  }
  if (evaluation.contains("sliding")) {
    add("sliding-window eval", 1e3 * number(evaluation["sliding"], "eval_seconds"));
  }
  if (evaluation.contains("ttt")) add("TTT eval", 1e3 * number(evaluation["ttt"], "eval_seconds"));
  if (evaluation.contains("ttt_phased")) {
    add("phased TTT eval", 1e3 * number(evaluation["ttt_phased"], "eval_seconds"));
  }
  return phases;
}

RunRecord load_run(const std::filesystem::path& dir) {
  PGOLF_CHECK(std::filesystem::is_directory(dir), "{}: not a run folder (no such directory)",
              dir.string());
  for (const char* file : {"config.json", "metrics.jsonl"}) {
    PGOLF_CHECK(std::filesystem::exists(dir / file),
                "{}: not a run folder (no {}; `pgolf train` writes one)", dir.string(), file);
  }
  RunRecord run;
  run.dir = dir;
  run.name = std::filesystem::absolute(dir).lexically_normal().filename().string();
  if (run.name.empty()) run.name = std::filesystem::absolute(dir).parent_path().filename().string();
  run.config = config_from_json(parse_json_file(dir / "config.json"));
  if (std::filesystem::exists(dir / "results.json")) {
    run.results = parse_json_file(dir / "results.json");
  }
  read_metrics(dir / "metrics.jsonl", run);
  if (std::filesystem::exists(dir / "train.log")) run.log = read_file(dir / "train.log");
  return run;
}

std::optional<Score> score_from_log(const std::string& log_text) {
  std::optional<Score> found;
  std::istringstream lines(log_text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.find("_exact val_loss:") == std::string::npos) continue;
    const auto loss = value_after(line, "val_loss:");
    if (!loss) continue;
    found = Score{line.substr(0, line.find(' ')), *loss, value_after(line, "val_bpb:")};
  }
  return found;
}

Score load_score(const std::string& spec) {
  const std::filesystem::path path(spec);
  if (std::filesystem::is_directory(path)) {
    const RunRecord run = load_run(path);
    return Score{run.name, run.val_loss(), run.val_bpb()};
  }
  if (std::filesystem::is_regular_file(path)) {
    const auto score = score_from_log(read_file(path));
    PGOLF_CHECK(score.has_value(),
                "{}: no `..._exact val_loss:X` line (give a run folder, a training log or a "
                "number)",
                spec);
    return Score{path.filename().string(), score->val_loss, score->val_bpb};
  }
  double value = 0;
  const auto [end, ec] = std::from_chars(spec.data(), spec.data() + spec.size(), value);
  PGOLF_CHECK(ec == std::errc() && end == spec.data() + spec.size(),
              "{}: not a run folder, a training log or a val_loss number", spec);
  return Score{spec, value, std::nullopt};
}

}  // namespace pgolf
