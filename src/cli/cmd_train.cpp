// pgolf train: preset + overrides -> a run folder with logs, metrics, the
// fp32 weights, the int8 artifact and its validated score.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "common/error.h"
#include "common/fs.h"
#include "config/options.h"
#include "dist/process_group.h"
#include "pipeline/train_run.h"
#include "train/checkpoint.h"

namespace pgolf {

namespace {

// `--nproc N`: the same command line in N processes with torchrun's variables.
// All ranks must write to one run folder, so a run id is fixed here when none
// was given.
int launch_ranks(int nproc, const Config& config, bool resuming) {
  std::vector<std::string> extra;
  if (!resuming && config.runtime.run_id.empty()) {
    extra = {"--run-id", prepare_run_dir(config).filename().string()};
  }
  return launch_invocation(nproc, extra);
}

// `--resume DIR`: the run's own config, with what was given now on top where
// that may change (runtime, evaluation, export); a model, data or training
// setting given now must agree with the run's.
Config resume_config(const std::filesystem::path& run_dir, const Config& now,
                     const ConfigFlags& flags) {
  PGOLF_CHECK(std::filesystem::exists(run_dir / "config.json") &&
                  std::filesystem::exists(run_dir / kCheckpointFile),
              "--resume {}: no config.json and {} there", run_dir.string(), kCheckpointFile);
  const Config stored = config_from_json(nlohmann::json::parse(read_file(run_dir / "config.json")));
  for (const ConfigMismatch& m : resume_mismatches(stored, now)) {
    PGOLF_CHECK(!flags.explicitly_set(m.key),
                "--resume {}: the run was started with a different configuration: {}",
                run_dir.string(), m.describe());
  }
  Config merged = stored;
  auto merged_table = config_options(merged);
  Config given = now;
  const auto now_table = config_options(given);
  for (size_t i = 0; i < now_table.size(); ++i) {
    if (flags.explicitly_set(now_table[i].key)) merged_table[i].set(now_table[i].get());
  }
  merged.runtime.run_id = stored.runtime.run_id;
  merged.validate();
  return merged;
}

}  // namespace

Command add_train_command(CLI::App& app) {
  auto* sub = app.add_subcommand("train", "train a model and export its artifact");
  auto flags = std::make_shared<ConfigFlags>(*sub, "cpu");
  auto resume = std::make_shared<std::string>();
  sub->add_option("--resume", *resume,
                  "continue the run in this folder from its checkpoint (same configuration)");
  auto nproc = std::make_shared<int>(0);
  sub->add_option("--nproc", *nproc,
                  "start N local ranks (torchrun's environment) and wait for them; 1 runs one "
                  "rank through the launcher and its process group (NCCL on CUDA)")
      ->check(CLI::Range(1, 64));
  return {sub, [flags, resume, nproc] {
            Config config = flags->resolve();
            if (*nproc >= 1) return launch_ranks(*nproc, config, !resume->empty());
            const bool resuming = !resume->empty();
            const std::filesystem::path run_dir =
                resuming ? std::filesystem::path(*resume) : prepare_run_dir(config);
            if (resuming) config = resume_config(run_dir, config, *flags);
            const bool master =
                !dist_env_from_environment().launched || dist_env_from_environment().rank == 0;
            if (master) fmt::print("run folder: {}\n{}", run_dir.string(), describe(config));
            const TrainSummary summary = run_training(config, run_dir, resuming);
            if (master)
              fmt::print("done: {} steps, val_bpb {:.8f} (artifact round trip), {} in {}\n",
                         summary.steps, summary.roundtrip.val_bpb, summary.artifact_bytes,
                         run_dir.string());
            return 0;
          }};
}

}  // namespace pgolf
