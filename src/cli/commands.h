// The subcommands of pgolf, one per cli/cmd_*.cpp. Each add_*_command() adds
// its CLI11 subcommand to `app` and returns how to run it; main.cpp only
// parses and dispatches.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace pgolf {

struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;  // returns the process exit code
};

Command add_data_command(CLI::App& app);     // cmd_data.cpp
Command add_train_command(CLI::App& app);    // cmd_train.cpp
Command add_eval_command(CLI::App& app);     // cmd_eval.cpp
Command add_inspect_command(CLI::App& app);  // cmd_inspect.cpp
Command add_bench_command(CLI::App& app);    // cmd_bench.cpp
Command add_doctor_command(CLI::App& app);   // cmd_doctor.cpp
Command add_config_command(CLI::App& app);   // cmd_config.cpp
// The workflow's commands (cli/workflow/commands.h), built with PGOLF_WORKFLOW.
std::vector<Command> add_workflow_commands(CLI::App& app);  // cli/workflow/commands.cpp

// Every command compiled in (eval always), added to `app` and to
// the dispatch table.
void register_commands(CLI::App& app);
// The process's arguments after argv[0], recorded by main() (`pgolf train
// --nproc` re-runs them in each rank).
void set_invocation(int argc, char** argv);
const std::vector<std::string>& invocation();
// `--nproc N`: this invocation without its --nproc, plus `extra` arguments,
// run in N local processes with torchrun's variables; returns the exit code
// (dist/launcher.h).
int launch_invocation(int nproc, const std::vector<std::string>& extra = {});
// Runs the innermost subcommand that app.parse() selected (`data fetch`, not
// `data`); returns the exit code.
int run_selected_command(CLI::App& app);

}  // namespace pgolf
