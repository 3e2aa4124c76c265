// pgolf eval: val_loss and val_bpb of an artifact, or of a safetensors
// state_dict under the reference's names (so a model trained in PyTorch can be
// scored by pgolf), printing the reference's `..._exact` lines.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "common/error.h"
#include "common/fs.h"
#include "common/progress.h"
#include "config/options.h"
#include "eval/final_eval.h"
#include "pipeline/run_context.h"

namespace pgolf {
namespace {

struct EvalArgs {
  std::string artifact;
  std::string weights;
  std::string val;
  std::string tokenizer;
  std::string token_losses;
  std::string results;
  int nproc = 0;  // 0: this process; N >= 1: N launched ranks
};

// Writes one line per scored target: its position in the stream, its id and its loss.
void write_token_losses(const std::string& path, const torch::Tensor& stream,
                        const std::vector<float>& losses) {
  std::ofstream out(path);
  PGOLF_CHECK(out.good(), "{}: cannot open for writing", path);
  out << "position\ttarget\tloss\n";
  const auto ids = stream.accessor<int64_t, 1>();
  for (size_t i = 0; i < losses.size(); ++i) {
    out << fmt::format("{}\t{}\t{:.8f}\n", i + 1, ids[static_cast<int64_t>(i) + 1], losses[i]);
  }
  PGOLF_CHECK(out.good(), "{}: write failed", path);
}

// The model's shape, and the evaluation geometry (sequence length, batch), come
// from the weights' own config (artifact header, or pgolf's safetensors
// metadata) unless given explicitly, so that an artifact scores exactly as it
// did at the end of its training run.
void adopt_stored_config(Config& config, const nlohmann::json& stored, const ConfigFlags& flags) {
  const Config from_file = config_from_json(stored);
  config.model = from_file.model;
  if (!flags.explicitly_set("train_seq_len"))
    config.train.train_seq_len = from_file.train.train_seq_len;
  if (!flags.explicitly_set("grad_accum_steps")) {
    config.train.grad_accum_steps = from_file.train.grad_accum_steps;
  }
  if (!flags.explicitly_set("val_batch_size"))
    config.eval.val_batch_size = from_file.eval.val_batch_size;
}

}  // namespace

Command add_eval_command(CLI::App& app) {
  auto* sub =
      app.add_subcommand("eval", "val_loss and val_bpb of an artifact or safetensors weights");
  auto args = std::make_shared<EvalArgs>();
  auto flags = std::make_shared<ConfigFlags>(*sub, "baseline");
  sub->add_option("artifact", args->artifact, "a pgolf artifact (.pgolf)");
  sub->add_option("--weights", args->weights,
                  "a safetensors state_dict with the reference's names");
  sub->add_option("--val", args->val, "validation shard glob (same as --val-files)");
  sub->add_option("--tokenizer", args->tokenizer,
                  "SentencePiece .model (same as --tokenizer-path)");
  sub->add_option("--token-losses", args->token_losses,
                  "write every scored target's loss (TSV, stream order)");
  sub->add_option("--results", args->results,
                  "write every number (plain, sliding, TTT, legality) as JSON");
  sub->add_option("--nproc", args->nproc, "local processes (data parallel)")
      ->check(CLI::Range(1, 64));
  return {
      sub, [args, flags] {
        if (args->nproc >= 1) return launch_invocation(args->nproc);
        PGOLF_CHECK(args->artifact.empty() != args->weights.empty(),
                    "give exactly one of ARTIFACT or --weights FILE");
        Config config = flags->resolve();
        if (!args->val.empty()) config.data.val_files = args->val;
        if (!args->tokenizer.empty()) config.data.tokenizer_path = args->tokenizer;

        StoredModel stored = args->artifact.empty() ? read_weights_file(args->weights)
                                                    : read_artifact_model(args->artifact);
        if (!stored.config.is_null()) adopt_stored_config(config, stored.config, *flags);
        config.validate();

        RunContext ctx = RunContext::open_with_data(config);
        const bool master = ctx.master();
        auto say = [&ctx](const std::string& line) { ctx.log.print(line); };
        if (!stored.non_compliant.empty()) {
          say(fmt::format("WARNING: NON-COMPLIANT artifact: {}", stored.non_compliant));
        }
        // #1406's script exports banks; its own quantiser (and other tools)
        // use per-layer names. Accept both for a banked model.
        ctx.load_model(std::move(stored.weights));
        const std::string& label = stored.label;
        const torch::Tensor& stream = ctx.val_tokens;
        ProcessGroup& group = *ctx.group;

        std::vector<float> losses;
        ValOptions options;
        PGOLF_CHECK(args->token_losses.empty() || group.world_size() == 1,
                    "--token-losses needs a single process");
        if (!args->token_losses.empty()) options.token_losses = &losses;
        Progress progress("eval", (stream.numel() - 1) / config.train.train_seq_len, "seqs",
                          config.runtime.quiet || !master);
        options.on_batch = [&](int64_t done, int64_t) { progress.update(done); };
        const ValResult r = ctx.validate(options);
        progress.finish();

        say(fmt::format("val_tokens:{} val_bytes:{:.0f} seq_len:{}", r.token_count, r.byte_count,
                        config.train.train_seq_len));
        say(fmt::format("{} val_loss:{:.4f} val_bpb:{:.4f} eval_time:{:.0f}ms", label, r.val_loss,
                        r.val_bpb, 1000.0 * r.seconds));
        say(fmt::format("{}_exact val_loss:{:.8f} val_bpb:{:.8f}", label, r.val_loss, r.val_bpb));
        if (!args->token_losses.empty()) {
          write_token_losses(args->token_losses, stream, losses);
          say(fmt::format("token losses: {} ({} targets)", args->token_losses, losses.size()));
        }

        FinalEvalOptions fe;
        fe.prefix = final_eval_prefix(label);
        fe.group = &group;
        fe.print = say;
        fe.quiet = config.runtime.quiet;
        const FinalEvalResult final_eval =
            run_final_evaluation(ctx.model, stream, ctx.luts, config, fe);
        if (!args->results.empty() && master) {
          nlohmann::json results = final_eval.to_json();
          results["plain"] = {{"name", label},
                              {"val_loss", r.val_loss},
                              {"val_bpb", r.val_bpb},
                              {"token_count", r.token_count},
                              {"byte_count", r.byte_count},
                              {"eval_seconds", r.seconds}};
          if (!stored.non_compliant.empty()) {
            results["non_compliant"].push_back(stored.non_compliant);
            results["score_first"] = false;
          }
          write_file_atomic(args->results, results.dump(2) + "\n");
        }
        return 0;
      }};
}

}  // namespace pgolf
