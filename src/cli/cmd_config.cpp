// pgolf config: the configuration a run would use (a preset, the environment
// and the flags, validated), as the start-up listing or as config.json; or
// the reference of every option (docs/configuration.md).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "config/options.h"

namespace pgolf {

Command add_config_command(CLI::App& app) {
  auto* sub =
      app.add_subcommand("config", "the resolved configuration, or every option's reference");
  auto flags = std::make_shared<ConfigFlags>(*sub, "baseline");
  auto json = std::make_shared<bool>(false);
  auto reference = std::make_shared<bool>(false);
  sub->add_flag("--json", *json, "print it as config.json");
  sub->add_flag("--reference", *reference,
                "print every option as Markdown (docs/configuration.md)");
  return {sub, [flags, json, reference] {
            if (*reference) {
              fmt::print("{}", options_reference());
            } else if (*json) {
              fmt::print("{}\n", to_json(flags->resolve()).dump(2));
            } else {
              fmt::print("{}", describe(flags->resolve()));
            }
            return 0;
          }};
}

}  // namespace pgolf
