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
  registry() = {add_data_command(app),    add_train_command(app), add_eval_command(app),
                add_inspect_command(app), add_bench_command(app), add_doctor_command(app)};
}

namespace {
std::vector<std::string>& invocation_storage() {
  static std::vector<std::string> args;
  return args;
}
}  // namespace

void set_invocation(int argc, char** argv) { invocation_storage().assign(argv + 1, argv + argc); }

const std::vector<std::string>& invocation() { return invocation_storage(); }

int run_selected_command(CLI::App& app) {
  for (const Command& command : registry()) {
    if (command.app->parsed()) return command.run();
  }
  return 1;
}

}  // namespace pgolf
