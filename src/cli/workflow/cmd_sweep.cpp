// pgolf sweep --seeds 1337,42,2025 [--name BASE] <train args>: `pgolf train`
// once per seed, each in its own process and run folder <run-dir>/BASE_seedS,
// then the runs' table with mean and std.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <memory>

#include "cli/workflow/commands.h"
#include "common/error.h"
#include "common/format.h"
#include "config/config.h"
#include "dist/process.h"
#include "workflow/run_record.h"
#include "workflow/stats.h"

namespace pgolf {
namespace {

struct SweepArgs {
  std::vector<int64_t> seeds;
  std::string name;
  std::string run_dir;
};

void print_summary(const std::vector<std::filesystem::path>& dirs) {
  fmt::print("\n{:<32} {:>6} {:>8} {:>12} {:>12} {:>12}\n", "run", "seed", "steps", "val_loss",
             "val_bpb", "total bytes");
  std::vector<double> losses, bpbs;
  for (const auto& dir : dirs) {
    const RunRecord r = load_run(dir);
    fmt::print("{:<32} {:>6} {:>8} {:>12.8f} {:>12.8f} {:>12}\n", r.name, r.config.train.seed,
               r.results.value("steps", int64_t{0}), r.val_loss(), r.val_bpb(),
               r.results.value("total_bytes", int64_t{0}));
    losses.push_back(r.val_loss());
    bpbs.push_back(r.val_bpb());
  }
  const SampleStats l = sample_stats(losses), b = sample_stats(bpbs);
  fmt::print("{:<32} {:>6} {:>8} {:>12.8f} {:>12.8f}\n", "mean", "", "", l.mean, b.mean);
  if (l.n >= 2) fmt::print("{:<32} {:>6} {:>8} {:>12.8f} {:>12.8f}\n", "std", "", "", l.std, b.std);
}

}  // namespace

Command add_sweep_command(CLI::App& app) {
  auto a = std::make_shared<SweepArgs>();
  CLI::App* sub = app.add_subcommand(
      "sweep", "`pgolf train` once per seed (other arguments go to train), then mean and std");
  sub->add_option("--seeds", a->seeds, "comma-separated seeds, e.g. 1337,42,2025")
      ->required()
      ->delimiter(',');
  sub->add_option("--name", a->name,
                  "run folders are <run-dir>/NAME_seed<S> (default: a timestamp)");
  sub->add_option("--run-dir", a->run_dir, "parent folder of the runs (as train's --run-dir)");
  sub->allow_extras();
  return {sub, [a, sub] {
            std::vector<std::string> train_args = sub->remaining();
            for (const auto& arg : train_args) {
              PGOLF_CHECK(arg != "--seed" && arg.rfind("--seed=", 0) != 0 && arg != "--run-id" &&
                              arg.rfind("--run-id=", 0) != 0,
                          "pgolf sweep sets {} itself (use --seeds and --name)", arg);
            }
            const std::string name =
                a->name.empty() ? "sweep_" + now_string(TimeFormat::kLocalStamp) : a->name;
            // --run-dir, else PGOLF_RUN_DIR (the option table), else runs/.
            std::string run_dir = a->run_dir;
            if (run_dir.empty()) run_dir = config_from_environment().runtime.run_dir;
            if (run_dir.empty()) run_dir = "runs";
            std::vector<std::filesystem::path> dirs;
            for (size_t i = 0; i < a->seeds.size(); ++i) {
              const int64_t seed = a->seeds[i];
              const std::string id = fmt::format("{}_seed{}", name, seed);
              std::vector<std::string> args = {self_executable(), "train"};
              args.insert(args.end(), train_args.begin(), train_args.end());
              for (const std::string& extra :
                   {std::string("--seed"), std::to_string(seed), std::string("--run-id"), id,
                    std::string("--run-dir"), run_dir}) {
                args.push_back(extra);
              }
              fmt::print("sweep: seed {} ({}/{}) -> {}/{}\n", seed, i + 1, a->seeds.size(), run_dir,
                         id);
              std::fflush(stdout);
              SpawnOptions spawn;
              spawn.argv = args;
              const int rc = ChildProcess(spawn).wait();
              PGOLF_CHECK(rc == 0,
                          "sweep: training seed {} failed (exit status {}); the runs so "
                          "far are in {}",
                          seed, rc, run_dir);
              dirs.push_back(std::filesystem::path(run_dir) / id);
            }
            print_summary(dirs);
            return 0;
          }};
}

}  // namespace pgolf
