#include "workflow/commands.h"

#include <CLI/CLI.hpp>

#include "common/error.h"

namespace pgolf {

void register_workflow_commands(CLI::App& app) {
  CLI::App* data = app.get_subcommand("data");
  PGOLF_CHECK(data != nullptr, "register_commands() must run first (no `data` command)");
  for (auto add : {add_report_command, add_compare_command, add_sweep_command, add_submit_command,
                   add_generate_command}) {
    register_command(add(app));
  }
  register_command(add_data_fetch_command(*data));
}

}  // namespace pgolf
