// pgolf inspect: the parameter table of a preset (names, shapes and counts
// exactly as the reference's state_dict, with the dtype the reference keeps
// each in), ending with model_params:N; optionally the initial weights.
// With an ARTIFACT argument: what the artifact holds, tensor by tensor
// (artifact/inspect.h), and its size against the cap with the code bytes'
// breakdown (common/code_size.h). With --code: every counted code file.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <memory>
#include <nlohmann/json.hpp>

#include "artifact/inspect.h"
#include "cli/commands.h"
#include "common/code_size.h"
#include "common/error.h"
#include "config/options.h"
#include "io/safetensors.h"
#include "model/flops.h"
#include "model/weights.h"

namespace pgolf {
namespace {

struct InspectArgs {
  std::string artifact;
  std::string weights;
  std::string save_init;
  bool code = false;
};

int inspect_artifact_file(const InspectArgs& args) {
  const LoadedArtifact loaded = read_artifact(args.artifact);
  StateDict original;
  if (!args.weights.empty()) original = read_safetensors(args.weights);
  const ArtifactReport report =
      inspect_artifact(loaded, args.weights.empty() ? nullptr : &original);
  fmt::print("{}\n{}{}", args.artifact, format_report(report), code_size_breakdown());
  return 0;
}

}  // namespace

Command add_inspect_command(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "inspect", "print a preset's parameter table, or what an ARTIFACT holds and its size");
  auto flags = std::make_shared<ConfigFlags>(*sub, "baseline");
  auto args = std::make_shared<InspectArgs>();
  sub->add_option("artifact", args->artifact,
                  "a pgolf artifact: per-tensor formats, bytes, zeros, totals, size vs the cap");
  sub->add_option("--weights", args->weights,
                  "with ARTIFACT: the original weights (safetensors) to measure the "
                  "quantization error against");
  sub->add_option("--save-init", args->save_init,
                  "also write the freshly initialised weights (seeded by SEED) as safetensors "
                  "under the reference's names");
  sub->add_flag("--code", args->code,
                "print the counted code: the code bundle's files and their bytes");
  return {sub, [flags, args] {
            if (args->code) {
              fmt::print("{}", code_size_breakdown(true));
              return 0;
            }
            if (!args->artifact.empty()) return inspect_artifact_file(*args);
            PGOLF_CHECK(args->weights.empty(), "--weights needs an ARTIFACT to compare with");
            const Config config = flags->resolve();
            torch::manual_seed(static_cast<uint64_t>(config.train.seed));
            GPT model(config.model);
            fmt::print("preset:{}\n{}", config.preset, parameter_table(model));
            fmt::print("training_flops_per_token:{:.0f} (seq_len {})\n",
                       training_flops_per_token(config.model, config.train.train_seq_len),
                       config.train.train_seq_len);
            if (!args->save_init.empty()) {
              write_safetensors(
                  args->save_init, state_dict(model),
                  {{"format", "pt"}, {"pgolf_config", stored_config_json(config).dump()}});
              fmt::print("initial weights: {}\n", args->save_init);
            }
            return 0;
          }};
}

}  // namespace pgolf
