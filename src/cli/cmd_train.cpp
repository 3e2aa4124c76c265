// pgolf train: preset + overrides -> a run folder with logs, metrics, the
// fp32 weights, the int8 artifact and its validated score.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <memory>

#include "cli/commands.h"
#include "common/error.h"
#include "config/options.h"
#include "train/trainer.h"

namespace pgolf {

Command add_train_command(CLI::App& app) {
  auto* sub = app.add_subcommand("train", "train a model and export its artifact");
  auto flags = std::make_shared<ConfigFlags>(*sub, "cpu");
  return {sub, [flags] {
            const Config config = flags->resolve();
            if (const char* world = std::getenv("WORLD_SIZE"); world && std::string(world) != "1") {
              fail(
                  "WORLD_SIZE={}: multi-process training is not available in this build yet; "
                  "run a single process",
                  world);
            }
            const auto run_dir = prepare_run_dir(config);
            fmt::print("run folder: {}\n{}", run_dir.string(), describe(config));
            const TrainSummary summary = train(config, run_dir);
            fmt::print("done: {} steps, val_bpb {:.8f} (artifact round trip), {} in {}\n",
                       summary.steps, summary.roundtrip.val_bpb, summary.artifact_bytes,
                       run_dir.string());
            return 0;
          }};
}

}  // namespace pgolf
