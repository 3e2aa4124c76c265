// pgolf doctor: devices, LibTorch and CUDA versions, threads, the GEMM and
// attention backends in use, and this machine's measured GEMM peaks
// (perf/doctor.h). The first thing to run on a new machine.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <memory>

#include "cli/commands.h"
#include "perf/doctor.h"
#include "pipeline/run_context.h"

namespace pgolf {

Command add_doctor_command(CLI::App& app) {
  auto* sub = app.add_subcommand("doctor", "devices, versions, threads, backends, GEMM peaks");
  auto options = std::make_shared<DoctorOptions>();
  auto threads = std::make_shared<int64_t>(0);
  sub->add_option("--threads", *threads,
                  "intra-op threads as training sets them (0: all cores; default PGOLF_THREADS)");
  sub->add_option("--gemm-size", options->gemm_size, "fp32 matmul size for the peak")
      ->capture_default_str();
  sub->add_option("--bf16-gemm-size", options->bf16_gemm_size, "bf16 matmul size for the peak")
      ->capture_default_str();
  sub->add_flag("!--no-measure", options->measure, "skip the GEMM peak measurements");
  return {sub, [options, threads, sub] {
            // The process as a run sets it up: PGOLF_THREADS and the other
            // environment rows of the option table, --threads on top.
            Config config = config_from_environment();
            if (sub->count("--threads") > 0) config.runtime.threads = *threads;
            RunContext::open(config);
            fmt::print("{}", format_doctor_report(doctor_report(*options)));
            return 0;
          }};
}

}  // namespace pgolf
