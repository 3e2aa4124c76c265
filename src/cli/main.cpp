// pgolf: one program for the whole Parameter Golf pipeline.
//
//   pgolf data      text/JSONL -> tokenizer + challenge shards
//   pgolf train     shards -> run folder (logs, metrics, artifact)
//   pgolf eval      artifact or safetensors -> val_loss, val_bpb
//   pgolf inspect   parameter table of a preset
//   pgolf bench     training throughput and MFU (--compare: against PyTorch)
//   pgolf doctor    devices, versions, threads, backends, GEMM peaks
// and, built with PGOLF_WORKFLOW (src/workflow/commands.h):
//   pgolf data fetch, report, compare, sweep, submit, generate
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cli/commands.h"
#include "common/error.h"
#include "common/host_memory.h"
#ifdef PGOLF_WORKFLOW
#include "workflow/commands.h"
#endif

int main(int argc, char** argv) {
  CLI::App app{"pgolf: train, compress and evaluate the smallest strong language models"};
  app.require_subcommand(1);
  pgolf::register_commands(app);
#ifdef PGOLF_WORKFLOW
  pgolf::register_workflow_commands(app);
#endif
  pgolf::set_invocation(argc, argv);
  // Before any tensor: every step's large blocks then stay mapped.
  // PGOLF_RETAIN_HOST_MEMORY=0 keeps the C library's defaults (for A/B runs).
  const char* retain = std::getenv("PGOLF_RETAIN_HOST_MEMORY");
  if (retain == nullptr || std::string(retain) != "0") pgolf::retain_freed_host_memory();
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
