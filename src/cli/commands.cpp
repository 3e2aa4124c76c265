#include "cli/commands.h"

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <utility>
#include <vector>

#include "common/error.h"
#ifdef PGOLF_WORKFLOW
#include "cli/workflow/commands.h"
#endif
#include "dist/launcher.h"
#include "dist/process_group.h"

namespace pgolf {
namespace {

std::vector<Command>& registry() {
  static std::vector<Command> commands;
  return commands;
}

}  // namespace

void register_commands(CLI::App& app) {
  registry() = {add_data_command(app),    add_train_command(app), add_eval_command(app),
                add_inspect_command(app), add_bench_command(app), add_doctor_command(app),
                add_config_command(app)};
#ifdef PGOLF_WORKFLOW
  CLI::App* data = app.get_subcommand("data");
  for (auto add : {add_report_command, add_compare_command, add_sweep_command, add_submit_command,
                   add_generate_command}) {
    registry().push_back(add(app));
  }
  registry().push_back(add_data_fetch_command(*data));
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
