// pgolf: one program for the whole Parameter Golf pipeline.
//
//   pgolf data      text/JSONL -> tokenizer + challenge shards
//   pgolf train     shards -> run folder (logs, metrics, artifact)
//   pgolf eval      artifact or safetensors -> val_loss, val_bpb
//   pgolf inspect   an artifact's tensors, or a preset's parameter table
//   pgolf bench     training throughput and MFU (--compare: against PyTorch)
//   pgolf doctor    devices, versions, threads, backends, GEMM peaks
//   pgolf config    the resolved configuration, or every option's reference
// and, built with PGOLF_WORKFLOW (cli/workflow/commands.h):
//   pgolf data fetch, report, compare, sweep, submit, generate
// Only the commands whose files the checkout has are registered
// (cli/commands.cpp): the code bundle's has eval and inspect alone.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "cli/commands.h"
#include "common/error.h"

int main(int argc, char** argv) {
  CLI::App app{"pgolf: train, compress and evaluate the smallest strong language models"};
  app.require_subcommand(1);
  pgolf::register_commands(app);
  pgolf::set_invocation(argc, argv);
  try {
    app.parse(argc, argv);
    return pgolf::run_selected_command(app);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const pgolf::Error& e) {
    std::fflush(stdout);
    fmt::print(stderr, "pgolf: error: {}\n", e.what());
    return 2;
  } catch (const c10::Error& e) {
    std::fflush(stdout);
    fmt::print(stderr, "pgolf: internal error (LibTorch): {}\n", e.what_without_backtrace());
    return 3;
  }
}
