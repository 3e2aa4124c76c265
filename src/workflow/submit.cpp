#include "workflow/submit.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <map>
#include <set>

#include "common/code_size.h"
#include "common/error.h"
#include "common/format.h"
#include "common/fs.h"
#include "common/progress.h"
#include "config/options.h"
#include "config/presets.h"
#include "workflow/sha256.h"
#include "workflow/stats.h"

namespace pgolf {
namespace {

constexpr double kTrainBudgetS = 600;
constexpr double kEvalBudgetS = 600;

// Fields that name this machine or this run, not the method.
bool is_incidental(const Option& opt) {
  static const std::vector<std::string> kKeys = {
      "run_id",      "run_dir",   "quiet", "threads", "data_path", "tokenizer_path",
      "train_files", "val_files", "seed",  "device",  "dtype"};
  return std::find(kKeys.begin(), kKeys.end(), opt.key) != kKeys.end();
}

// (env, flag, value) of every field that differs from `base`.
struct Difference {
  std::string env, flag, value;
};
std::vector<Difference> differences(Config config, Config base) {
  std::vector<Difference> out;
  const auto mine = config_options(config);
  const auto theirs = config_options(base);
  for (size_t i = 0; i < mine.size(); ++i) {
    if (is_incidental(mine[i]) || mine[i].get() == theirs[i].get()) continue;
    out.push_back({mine[i].env, mine[i].flag(), mine[i].get()});
  }
  return out;
}

double train_s(const RunRecord& r) { return r.results.value("train_time_ms", 0.0) / 1000.0; }
double eval_s(const RunRecord& r) { return r.final_score().eval_seconds; }
double gptq_s(const RunRecord& r) {
  const auto& exported = r.results.value("export", nlohmann::json::object());
  if (!exported.contains("gptq")) return 0;
  return exported["gptq"].value("calibration_ms", 0.0) / 1000.0;
}

template <typename F>
double max_over(const std::vector<RunRecord>& runs, F f) {
  double m = 0;
  for (const auto& r : runs) m = std::max(m, static_cast<double>(f(r)));
  return m;
}

// train_seed<S>.log, or train_<run>.log when two runs share a seed.
std::map<const RunRecord*, std::string> log_names(const std::vector<RunRecord>& runs) {
  std::map<int64_t, int> seen;
  for (const auto& r : runs) ++seen[r.config.train.seed];
  std::map<const RunRecord*, std::string> names;
  for (const auto& r : runs) {
    names[&r] = seen[r.config.train.seed] > 1
                    ? fmt::format("train_{}.log", r.name)
                    : fmt::format("train_seed{}.log", r.config.train.seed);
  }
  return names;
}

std::string results_table(const std::vector<RunRecord>& runs) {
  std::string t =
      "| Seed | Steps | Train time | Score | val_loss | val_bpb | Artifact bytes | Total bytes | "
      "Fits |\n"
      "|---:|---:|---:|:---|---:|---:|---:|---:|:---:|\n";
  std::vector<double> losses, bpbs;
  for (const auto& r : runs) {
    const FinalScore f = r.final_score();
    t += fmt::format("| {} | {} | {:.1f} s | {} | {:.8f} | {:.8f} | {} | {} | {} |\n",
                     r.config.train.seed, with_commas(r.results.value("steps", int64_t{0})),
                     train_s(r), f.name, f.val_loss, f.val_bpb,
                     with_commas(r.results.value("artifact_bytes", int64_t{0})),
                     with_commas(r.results.value("total_bytes", int64_t{0})),
                     r.results.value("fits_cap", false) ? "yes" : "NO");
    losses.push_back(f.val_loss);
    bpbs.push_back(f.val_bpb);
  }
  const SampleStats l = sample_stats(losses), b = sample_stats(bpbs);
  t += fmt::format("| **Mean** | | | | **{:.8f}** | **{:.8f}** | | | |\n", l.mean, b.mean);
  if (l.n >= 2) t += fmt::format("| **Std** | | | | {:.8f} | {:.8f} | | | |\n", l.std, b.std);
  return t;
}

std::string significance(const std::vector<RunRecord>& runs, const SubmitOptions& o,
                         nlohmann::json& json) {
  if (o.against.empty()) {
    return "No comparison given (`pgolf submit ... --against RECORD_LOGS...`). A new record must "
           "beat the current one by at least 0.005 nats at p < 0.01 over seeds; check it with "
           "`pgolf compare`.\n";
  }
  std::vector<double> mine, theirs;
  for (const auto& r : runs) mine.push_back(r.val_loss());
  std::string sources;
  for (const auto& spec : o.against) {
    const Score s = load_score(spec);
    theirs.push_back(s.val_loss);
    sources += fmt::format("{}`{}` ({:.8f})", sources.empty() ? "" : ", ", s.label, s.val_loss);
  }
  const ImprovementTest t = test_improvement(mine, theirs, o.min_improvement);
  json["significance"] = {{"against_val_loss", theirs},
                          {"improvement_nats", t.improvement},
                          {"min_improvement_nats", t.threshold},
                          {"t", t.t},
                          {"df", t.df},
                          {"p_value", t.p_value},
                          {"method", t.method}};
  return fmt::format(
      "Against {}: mean improvement {:.5f} nats (this {:.8f} ± {:.8f}, n={}; the record {:.8f} "
      "± {:.8f}, n={}). One-sided {} t-test that the improvement exceeds {} nats: t = {:.3f}, "
      "df = {:.1f}, **p = {:.4g}** ({} the challenge's p < 0.01).\n",
      sources, t.improvement, t.candidate.mean, t.candidate.std, t.candidate.n, t.baseline.mean,
      t.baseline.std, t.baseline.n, t.method == "welch" ? "Welch" : "one-sample", t.threshold, t.t,
      t.df, t.p_value, t.p_value < 0.01 ? "meets" : "does NOT meet");
}

// The source the runs were built from, training included (a reader needs it
// to reproduce them): src/ less the workflow, tools/, cmake/ and
// CMakeLists.txt. The counted code is its evaluator closure (common/code_size.h).
int64_t copy_source(const std::filesystem::path& root, const std::filesystem::path& dest) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files = {root / "CMakeLists.txt"};
  for (const char* folder : {"src", "tools", "cmake"}) {
    if (!fs::exists(root / folder)) continue;
    for (const auto& entry : fs::recursive_directory_iterator(root / folder)) {
      const std::string rel = fs::relative(entry.path(), root).generic_string();
      const std::string ext = entry.path().extension().string();
      const bool workflow =
          rel.starts_with("src/workflow/") || rel.starts_with("src/cli/workflow/");
      if (entry.is_regular_file() && !workflow &&
          (ext == ".h" || ext == ".cpp" || ext == ".cmake")) {
        files.push_back(entry.path());
      }
    }
  }
  int64_t bytes = 0;
  for (const fs::path& file : files) {
    const auto target = dest / fs::relative(file, root);
    fs::create_directories(target.parent_path());
    fs::copy_file(file, target, fs::copy_options::overwrite_existing);
    bytes += static_cast<int64_t>(fs::file_size(file));
  }
  return bytes;
}

std::string method_section(const std::vector<RunRecord>& runs) {
  const RunRecord& first = runs.front();
  std::string out = fmt::format(
      "Trained, quantized and evaluated with [pgolf](pgolf/) (C++20 / LibTorch), preset "
      "`{}`.\n\nConfiguration (the differences from the challenge baseline's defaults, by their "
      "environment variables):\n\n",
      first.config.preset);
  const auto diffs = differences(first.config, preset("baseline"));
  if (diffs.empty()) out += "- none: the baseline's configuration\n";
  for (const auto& d : diffs) out += fmt::format("- `{}={}`\n", d.env, d.value);
  std::string flags;
  for (const auto& d : differences(first.config, preset(first.config.preset))) {
    flags += fmt::format(" {} {}", d.flag, d.value);
  }
  // A CPU run's fp32 stands for the GPU's bf16 autocast (the reference's).
  const bool gpu_fp32 =
      first.config.runtime.device.is_cuda() && first.config.runtime.dtype == ComputeDtype::kFp32;
  const std::string gpu_dtype = gpu_fp32 ? "fp32" : "bf16";
  std::string seeds;
  for (const auto& r : runs)
    seeds += fmt::format("{}{}", seeds.empty() ? "" : " ", r.config.train.seed);
  out += fmt::format(
      "\nCommand (8×H100; DATA_PATH / TOKENIZER_PATH pointing at `pgolf data fetch`'s "
      "download):\n\n"
      "```bash\n"
      "cmake -S pgolf -B build -DPGOLF_WORKFLOW=OFF -DPGOLF_BUILD_TESTS=OFF && cmake --build build "
      "-j\n"
      "for SEED in {}; do\n"
      "  torchrun --standalone --nproc_per_node=8 --no-python ./build/pgolf train --preset {}{} "
      "--device cuda --dtype {} --seed $SEED --run-id seed$SEED\n"
      "done\n```\n",
      seeds, first.config.preset, flags, gpu_dtype);
  return out;
}

}  // namespace

std::vector<Statement> legality_statements(const std::vector<RunRecord>& runs) {
  std::vector<Statement> out;
  const double total =
      max_over(runs, [](const RunRecord& r) { return r.results.value("total_bytes", int64_t{0}); });
  const double code =
      max_over(runs, [](const RunRecord& r) { return r.results.value("code_bytes", int64_t{0}); });
  out.push_back(
      {total <= 16'000'000,
       fmt::format("Size: the largest artifact + code is {} bytes (code {} bytes) against "
                   "the 16,000,000-byte cap.",
                   with_commas(static_cast<int64_t>(total)),
                   with_commas(static_cast<int64_t>(code)))});
  const double train = max_over(runs, train_s);
  const double calib = max_over(runs, [](const RunRecord& r) { return train_s(r) + gptq_s(r); });
  out.push_back(
      {calib <= kTrainBudgetS,
       fmt::format("Training time: at most {:.1f} s{} (budget {:.0f} s).", train,
                   calib > train ? fmt::format(", {:.1f} s with GPTQ calibration", calib) : "",
                   kTrainBudgetS)});
  const double eval = max_over(runs, eval_s);
  out.push_back(
      {eval <= kEvalBudgetS,
       fmt::format("Evaluation time: at most {:.1f} s (budget {:.0f} s).", eval, kEvalBudgetS)});
  bool full_val = true;
  std::set<std::string> devices;
  for (const auto& r : runs) {
    full_val = full_val && r.config.eval.val_max_tokens == 0;
    devices.insert(r.config.runtime.device.str());
  }
  const std::string scored_by = runs.front().final_score().name;
  out.push_back({full_val, full_val ? fmt::format("Scored on the whole validation split "
                                                  "(VAL_MAX_TOKENS=0), after training, from the "
                                                  "artifact alone; the score is `{}`.",
                                                  scored_by)
                                    : "Scored on a prefix of the validation split only "
                                      "(VAL_MAX_TOKENS > 0): not a valid score."});
  std::set<std::string> reasons;
  bool score_first = true;
  for (const auto& r : runs) {
    const FinalScore f = r.final_score();
    score_first = score_first && f.score_first;
    reasons.insert(f.non_compliant.begin(), f.non_compliant.end());
  }
  if (reasons.empty() && score_first) {
    out.push_back({true, scored_by == "legal_ttt_phased"
                             ? "Test-time training is score-first: every chunk of a document "
                               "was scored before its adapter trained on it, and the global "
                               "phases trained only on documents already scored (audited, 0 "
                               "violations)."
                         : scored_by == "legal_ttt"
                             ? "Test-time training is score-first: every chunk was scored "
                               "before the model trained on it, and the last chunk was never "
                               "trained on (audited, 0 violations)."
                             : "No test-time training: the model never sees a validation token "
                               "before scoring it."});
  } else {
    std::string why;
    for (const auto& reason : reasons) why += " " + reason;
    out.push_back({false,
                   "NON-COMPLIANT evaluation: the model trained on validation tokens "
                   "before they were scored." +
                       why});
  }
  out.push_back({true, fmt::format("Training reads the training shards only ({}); the validation "
                                   "shards are only scored.",
                                   runs.front().config.data.train_glob())});
  const std::filesystem::path tokenizer = runs.front().config.data.tokenizer_path;
  if (std::filesystem::exists(tokenizer)) {
    const bool official = sha256_file(tokenizer) == kOfficialSp1024Sha256;
    out.push_back({official, official ? "Tokenizer: the challenge's fineweb_1024_bpe.model "
                                        "(SHA-256 matches), unchanged."
                                      : fmt::format("Tokenizer: {} is NOT the challenge's sp1024 "
                                                    "model: val_bpb must be proven correct.",
                                                    tokenizer.filename().string())});
  }
  const bool gpu = std::all_of(devices.begin(), devices.end(),
                               [](const std::string& d) { return d.rfind("cuda", 0) == 0; });
  out.push_back({gpu, gpu ? "Hardware: CUDA (the record track runs on 8×H100)."
                          : "Hardware: trained on CPU: not a 10-minute 8×H100 record run."});
  return out;
}

void write_record_folder(const std::vector<RunRecord>& runs, const SubmitOptions& o) {
  PGOLF_CHECK(!runs.empty(), "pgolf submit: give at least one run folder");
  PGOLF_CHECK(!o.out.empty(), "pgolf submit: give --out DIR");
  for (const auto& r : runs) {
    PGOLF_CHECK(r.finished(), "{}: the run did not finish (no results.json)", r.dir.string());
  }
  PGOLF_CHECK(o.overwrite || !std::filesystem::exists(o.out) || std::filesystem::is_empty(o.out),
              "{}: exists and is not empty (--overwrite replaces it)", o.out.string());
  std::filesystem::create_directories(o.out);

  std::vector<double> losses, bpbs;
  nlohmann::json seed_results = nlohmann::json::object();
  std::vector<int64_t> seeds;
  const auto logs = log_names(runs);
  for (const auto& r : runs) {
    const FinalScore f = r.final_score();
    losses.push_back(f.val_loss);
    bpbs.push_back(f.val_bpb);
    seeds.push_back(r.config.train.seed);
    seed_results[std::to_string(r.config.train.seed)] = {
        {"val_loss", f.val_loss},
        {"val_bpb", f.val_bpb},
        {"score", f.name},
        {"steps", r.results.value("steps", int64_t{0})},
        {"artifact_bytes", r.results.value("artifact_bytes", int64_t{0})},
        {"bytes_total", r.results.value("total_bytes", int64_t{0})},
        {"train_time_s", train_s(r)},
        {"eval_time_s", f.eval_seconds},
        {"log", logs.at(&r)}};
    write_file_atomic(o.out / logs.at(&r), r.log);
  }
  const SampleStats l = sample_stats(losses), b = sample_stats(bpbs);
  const std::string name = o.name.empty() ? "pgolf " + runs.front().config.preset : o.name;
  nlohmann::json json = {
      {"author", o.author},
      {"github_id", o.github_id},
      {"name", name},
      {"blurb", o.blurb.empty() ? fmt::format("pgolf preset {}; mean of {} seed(s): val_bpb {:.5f} "
                                              "(std {:.5f})",
                                              runs.front().config.preset, l.n, b.mean, b.std)
                                : o.blurb},
      {"date", now_string(TimeFormat::kIso8601)},
      {"track", o.track},
      {"val_loss", l.mean},
      {"val_bpb", b.mean},
      {"val_loss_std", l.std},
      {"val_bpb_std", b.std},
      {"seeds", seeds},
      {"seed_results", seed_results},
      {"bytes_total",
       static_cast<int64_t>(max_over(
           runs, [](const RunRecord& r) { return r.results.value("total_bytes", int64_t{0}); }))},
      {"bytes_code", runs.front().results.value("code_bytes", int64_t{0})}};

  const std::vector<Statement> statements = legality_statements(runs);
  nlohmann::json compliance = {
      {"artifact_bytes_max", static_cast<int64_t>(max_over(runs,
                                                           [](const RunRecord& r) {
                                                             return r.results.value(
                                                                 "artifact_bytes", int64_t{0});
                                                           }))},
      {"train_time_max_s", max_over(runs, train_s)},
      {"eval_time_max_s", max_over(runs, eval_s)},
      {"all_checks_pass",
       std::all_of(statements.begin(), statements.end(), [](const Statement& s) { return s.ok; })}};
  json["compliance"] = compliance;
  const std::string significance_text = significance(runs, o, json);

  std::string source_note =
      "The pgolf source was not copied (no --source): add it before submitting.";
  if (!o.source_dir.empty()) {
    const int64_t copied = copy_source(o.source_dir, o.out / "pgolf");
    const int64_t counted = runs.front().results.value("code_bytes", int64_t{0});
    const int64_t bundle = code_size().bytes;
    source_note = fmt::format(
        "`pgolf/` holds the source that trained and evaluated the runs ({} bytes). The code "
        "bytes counted are its evaluator's, bundled and compressed: {} bytes{}.",
        with_commas(copied), with_commas(bundle),
        bundle == counted ? ", as the runs counted"
                          : fmt::format(" (the runs counted {}: the checkout changed since)",
                                        with_commas(counted)));
  }

  std::string checks;
  for (const Statement& s : statements)
    checks += fmt::format("- [{}] {}\n", s.ok ? "x" : " ", s.text);
  std::string files = "- `README.md`, `submission.json`\n";
  for (const auto& r : runs)
    files += fmt::format("- `{}` (training log, seed {})\n", logs.at(&r), r.config.train.seed);
  if (!o.source_dir.empty()) files += "- `pgolf/` (the code: build with CMake as above)\n";

  const std::string readme = fmt::format(
      "# {}\n\n**val_bpb: {:.5f}** (mean of {} seed{}{}, post-quantization round trip of the "
      "artifact)\n\n## Method\n\n{}\n## Results\n\n{}\n## Significance\n\n{}\n## Size and "
      "legality\n\n{}\n{}\n\n## Included files\n\n{}",
      name, b.mean, l.n, l.n == 1 ? "" : "s", l.n >= 2 ? fmt::format(", std {:.5f}", b.std) : "",
      method_section(runs), results_table(runs), significance_text, checks, source_note, files);
  write_file_atomic(o.out / "README.md", readme);
  write_file_atomic(o.out / "submission.json", json.dump(2) + "\n");
}

}  // namespace pgolf
