#include "cli/workflow/commands.h"

#include <CLI/CLI.hpp>

namespace pgolf {

// Here, not in cli/commands.cpp, so that the evaluator's files include nothing
// of the workflow (the code bundle follows every #include, conditional or not).
std::vector<Command> add_workflow_commands(CLI::App& app) {
  std::vector<Command> commands;
  for (auto add : {add_report_command, add_compare_command, add_sweep_command, add_submit_command,
                   add_generate_command}) {
    commands.push_back(add(app));
  }
  CLI::App* data = app.get_subcommand("data");  // `pgolf data fetch`: needs cmd_data.cpp
  commands.push_back(add_data_fetch_command(*data));
  return commands;
}

}  // namespace pgolf
