// pgolf inspect: the parameter table of a preset (names, shapes and counts
// exactly as the reference's state_dict), ending with model_params:N.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <memory>

#include "cli/commands.h"
#include "config/options.h"
#include "model/flops.h"
#include "model/weights.h"

namespace pgolf {

Command add_inspect_command(CLI::App& app) {
  auto* sub = app.add_subcommand("inspect", "print a preset's parameter table");
  auto flags = std::make_shared<ConfigFlags>(*sub, "baseline");
  return {sub, [flags] {
            const Config config = flags->resolve();
            torch::manual_seed(static_cast<uint64_t>(config.train.seed));
            GPT model(config.model);
            fmt::print("preset:{}\n{}", config.preset, parameter_table(model));
            fmt::print("training_flops_per_token:{:.0f} (seq_len {})\n",
                       training_flops_per_token(config.model, config.train.train_seq_len),
                       config.train.train_seq_len);
            return 0;
          }};
}

}  // namespace pgolf
