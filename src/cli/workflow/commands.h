// The competitor's workflow commands (README, "From a fresh machine to a
// record folder"), one cli/workflow/cmd_*.cpp each:
//
//   pgolf data fetch   the challenge's FineWeb export (libcurl, resumable, verified)
//   pgolf report       run folders -> one self-contained HTML page of curves and tables
//   pgolf compare      runs vs runs: mean, std, Welch's one-sided p-value
//   pgolf sweep        `pgolf train` once per seed
//   pgolf submit       runs -> a records/ folder as the challenge asks
//   pgolf generate     samples text from an artifact
#pragma once

#include "cli/commands.h"

namespace pgolf {

Command add_data_fetch_command(CLI::App& data);  // cmd_fetch.cpp: under `pgolf data`
Command add_report_command(CLI::App& app);       // cmd_report.cpp
Command add_compare_command(CLI::App& app);      // cmd_compare.cpp
Command add_sweep_command(CLI::App& app);        // cmd_sweep.cpp
Command add_submit_command(CLI::App& app);       // cmd_submit.cpp
Command add_generate_command(CLI::App& app);     // cmd_generate.cpp

}  // namespace pgolf
