// `pgolf data ARGS...` run in this process, as the command line would.
#pragma once

#include <CLI/CLI.hpp>
#include <algorithm>
#include <string>
#include <vector>

#include "cli/commands.h"

namespace pgolf::testing {

inline int run_data_command(std::vector<std::string> args) {
  CLI::App app;
  const Command command = add_data_command(app);
  args.insert(args.begin(), "data");
  std::reverse(args.begin(), args.end());  // CLI11 parses a reversed vector
  app.parse(args);
  return command.run();
}

}  // namespace pgolf::testing
