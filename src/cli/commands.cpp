#include "cli/commands.h"

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <utility>
#include <vector>

#include "common/error.h"
#include "dist/launcher.h"
#include "dist/process_group.h"

namespace pgolf {
namespace {

std::vector<Command>& registry() {
  static std::vector<Command> commands;
  return commands;
}

}  // namespace

// Only the commands compiled in: CMake defines PGOLF_HAS_CMD_<NAME> for each
// cli/cmd_<name>.cpp of the checkout, and the code bundle, the evaluator's
// own checkout, holds eval alone (docs/artifact.md, "Code bytes").
void register_commands(CLI::App& app) {
  std::vector<Command>& commands = registry();
  commands.clear();
#ifdef PGOLF_HAS_CMD_DATA
  commands.push_back(add_data_command(app));
#endif
#ifdef PGOLF_HAS_CMD_TRAIN
  commands.push_back(add_train_command(app));
#endif
  commands.push_back(add_eval_command(app));
#ifdef PGOLF_HAS_CMD_INSPECT
  commands.push_back(add_inspect_command(app));
#endif
#ifdef PGOLF_HAS_CMD_BENCH
  commands.push_back(add_bench_command(app));
#endif
#ifdef PGOLF_HAS_CMD_DOCTOR
  commands.push_back(add_doctor_command(app));
#endif
#ifdef PGOLF_HAS_CMD_CONFIG
  commands.push_back(add_config_command(app));
#endif
#ifdef PGOLF_WORKFLOW
  for (Command& command : add_workflow_commands(app)) commands.push_back(std::move(command));
#endif
}

namespace {
std::vector<std::string>& invocation_storage() {
  static std::vector<std::string> args;
  return args;
}
}  // namespace

void set_invocation(int argc, char** argv) { invocation_storage().assign(argv + 1, argv + argc); }

const std::vector<std::string>& invocation() { return invocation_storage(); }

int launch_invocation(int nproc, const std::vector<std::string>& extra) {
  PGOLF_CHECK(!dist_env_from_environment().launched,
              "--nproc inside a launched rank (RANK is set)");
  std::vector<std::string> args;
  const auto& all = invocation();
  for (size_t i = 0; i < all.size(); ++i) {
    if (all[i] == "--nproc") {
      ++i;
      continue;
    }
    if (all[i].rfind("--nproc=", 0) == 0) continue;
    args.push_back(all[i]);
  }
  args.insert(args.end(), extra.begin(), extra.end());
  return launch_local_ranks(nproc, args);
}

int run_selected_command(CLI::App& app) {
  // A parent (`data`) counts as parsed when its subcommand (`data fetch`) is.
  for (const Command& command : registry()) {
    if (command.app->parsed() && command.app->get_subcommands().empty()) return command.run();
  }
  return 1;
}

}  // namespace pgolf
