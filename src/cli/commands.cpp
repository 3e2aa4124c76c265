#include "cli/commands.h"

#include <CLI/CLI.hpp>
#include <vector>

namespace pgolf {
namespace {

std::vector<Command>& registry() {
  static std::vector<Command> commands;
  return commands;
}

}  // namespace

void register_commands(CLI::App& app) {
  registry() = {add_data_command(app), add_train_command(app), add_eval_command(app),
                add_inspect_command(app), add_bench_command(app)};
}

int run_selected_command(CLI::App& app) {
  for (const Command& command : registry()) {
    if (command.app->parsed()) return command.run();
  }
  return 1;
}

}  // namespace pgolf
