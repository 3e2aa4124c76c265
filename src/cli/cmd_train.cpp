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
#include "train/trainer.h"

namespace pgolf {

Command add_train_command(CLI::App& app) {
  auto* sub = app.add_subcommand("train", "train a model and export its artifact");
  auto flags = std::make_shared<ConfigFlags>(*sub, "cpu");
  auto resume = std::make_shared<std::string>();
  sub->add_option("--resume", *resume,
                  "continue the run in this folder from its checkpoint (same configuration)");
  return {sub, [flags, resume] {
            if (const char* world = std::getenv("WORLD_SIZE"); world && std::string(world) != "1") {
              fail(
                  "WORLD_SIZE={}: multi-process training is not available in this build yet; "
                  "run a single process",
                  world);
            }
            Config config = flags->resolve();
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
            fmt::print("run folder: {}\n{}", run_dir.string(), describe(config));
            const TrainSummary summary = train(config, run_dir, !resume->empty());
            fmt::print("done: {} steps, val_bpb {:.8f} (artifact round trip), {} in {}\n",
                       summary.steps, summary.roundtrip.val_bpb, summary.artifact_bytes,
                       run_dir.string());
            return 0;
          }};
}

}  // namespace pgolf
