// pgolf inspect: the parameter table of a preset (names, shapes and counts
// exactly as the reference's state_dict, with the dtype the reference keeps
// each in), ending with model_params:N; optionally the initial weights.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "config/options.h"
#include "io/safetensors.h"
#include "model/flops.h"
#include "model/weights.h"

namespace pgolf {

Command add_inspect_command(CLI::App& app) {
  auto* sub = app.add_subcommand("inspect", "print a preset's parameter table");
  auto flags = std::make_shared<ConfigFlags>(*sub, "baseline");
  auto save_init = std::make_shared<std::string>();
  sub->add_option("--save-init", *save_init,
                  "also write the freshly initialised weights (seeded by SEED) as safetensors "
                  "under the reference's names");
  return {sub, [flags, save_init] {
            const Config config = flags->resolve();
            torch::manual_seed(static_cast<uint64_t>(config.train.seed));
            GPT model(config.model);
            fmt::print("preset:{}\n{}", config.preset, parameter_table(model));
            fmt::print("training_flops_per_token:{:.0f} (seq_len {})\n",
                       training_flops_per_token(config.model, config.train.train_seq_len),
                       config.train.train_seq_len);
            if (!save_init->empty()) {
              write_safetensors(*save_init, state_dict(model),
                                {{"format", "pt"}, {"pgolf_config", to_json(config).dump()}});
              fmt::print("initial weights: {}\n", *save_init);
            }
            return 0;
          }};
}

}  // namespace pgolf
