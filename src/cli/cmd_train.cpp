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
#include "train/checkpoint.h"
#include "train/distributed.h"
#include "train/trainer.h"

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

}  // namespace

Command add_train_command(CLI::App& app) {
  auto* sub = app.add_subcommand("train", "train a model and export its artifact");
  auto flags = std::make_shared<ConfigFlags>(*sub, "cpu");
  auto resume = std::make_shared<std::string>();
  sub->add_option("--resume", *resume,
                  "continue the run in this folder from its checkpoint (same configuration)");
  auto nproc = std::make_shared<int>(1);
  sub->add_option("--nproc", *nproc,
                  "start N local ranks (torchrun's environment) and wait for them");
  return {sub, [flags, resume, nproc] {
            Config config = flags->resolve();
            if (*nproc > 1) return launch_ranks(*nproc, config, !resume->empty());
            std::filesystem::path run_dir;
            if (!resume->empty()) {
              run_dir = *resume;
              PGOLF_CHECK(std::filesystem::exists(run_dir / "config.json") &&
                              std::filesystem::exists(run_dir / kCheckpointFile),
                          "--resume {}: no config.json and {} there", run_dir.string(),
                          kCheckpointFile);
              const Config stored =
                  config_from_json(nlohmann::json::parse(read_file(run_dir / "config.json")));
              // Model, data and training settings given now must agree with the
              // run's; runtime, eval and export settings given now take effect.
              const auto mismatches = resume_mismatches(stored, config);
              for (const auto& m : mismatches) {
                const std::string env = m.substr(0, m.find(' '));
                for (const Option& opt : config_options(config)) {
                  PGOLF_CHECK(opt.env != env || !flags->explicitly_set(opt.key),
                              "--resume {}: the run was started with a different configuration: "
                              "{}",
                              run_dir.string(), m);
                }
              }
              Config merged = stored;
              auto merged_table = config_options(merged);
              const auto now_table = config_options(config);
              for (size_t i = 0; i < now_table.size(); ++i) {
                if (flags->explicitly_set(now_table[i].key))
                  merged_table[i].set(now_table[i].get());
              }
              merged.runtime.run_id = stored.runtime.run_id;
              merged.validate();
              config = merged;
            } else {
              run_dir = prepare_run_dir(config);
            }
            const char* rank = std::getenv("RANK");
            const bool master = !rank || std::string(rank) == "0";
            if (master) fmt::print("run folder: {}\n{}", run_dir.string(), describe(config));
            const TrainSummary summary = train(config, run_dir, !resume->empty());
            if (master)
              fmt::print("done: {} steps, val_bpb {:.8f} (artifact round trip), {} in {}\n",
                         summary.steps, summary.roundtrip.val_bpb, summary.artifact_bytes,
                         run_dir.string());
            return 0;
          }};
}

}  // namespace pgolf
