// pgolf eval: val_loss and val_bpb of an artifact, or of a safetensors
// state_dict under the reference's names (so a model trained in PyTorch can be
// scored by pgolf), printing the reference's `..._exact` lines.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "artifact/artifact.h"
#include "cli/commands.h"
#include "common/device.h"
#include "common/error.h"
#include "common/progress.h"
#include "config/options.h"
#include "data/tokenizer.h"
#include "eval/val_bpb.h"
#include "io/safetensors.h"
#include "model/weights.h"

namespace pgolf {
namespace {

struct EvalArgs {
  std::string artifact;
  std::string weights;
  std::string val;
  std::string tokenizer;
  std::string token_losses;
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
  return {sub, [args, flags] {
            PGOLF_CHECK(args->artifact.empty() != args->weights.empty(),
                        "give exactly one of ARTIFACT or --weights FILE");
            Config config = flags->resolve();
            if (!args->val.empty()) config.data.val_files = args->val;
            if (!args->tokenizer.empty()) config.data.tokenizer_path = args->tokenizer;

            StateDict weights;
            std::string label = "final_weights";
            if (!args->artifact.empty()) {
              const LoadedArtifact loaded = read_artifact(args->artifact);
              adopt_stored_config(config, loaded.config, *flags);
              weights = dequantize(loaded.model);
              label = roundtrip_label(loaded.info.quant_format, loaded.info.codec);
            } else {
              SafetensorsMetadata metadata;
              weights = read_safetensors(args->weights, &metadata);
              if (metadata.count("pgolf_config")) {
                adopt_stored_config(config, nlohmann::json::parse(metadata.at("pgolf_config")),
                                    *flags);
              }
            }
            config.validate();

            const auto device = resolve_device(config.runtime.device);
            configure_threads(config.runtime.threads);
            const Tokenizer tokenizer = Tokenizer::load(config.data.tokenizer_path);
            check_vocab(tokenizer, config.model.vocab_size);
            const auto luts = build_byte_luts(tokenizer, config.model.vocab_size);
            const auto stream = validation_stream(config);

            GPT model(config.model);
            // #1406's script exports banks; its own quantiser (and other
            // tools) use per-layer names. Accept both for a banked model.
            if (config.model.weight_layout == "banks" && !has_tensor(weights, "qo_bank")) {
              weights = rebank_state_dict(weights, config.model.num_layers);
            }
            load_state_dict(model, weights);
            model->to(device);
            model->set_compute_dtype(parse_compute_dtype(config.runtime.dtype));

            std::vector<float> losses;
            ValOptions options;
            options.seq_len = config.train.train_seq_len;
            options.batch_seqs =
                val_batch_seqs(config.eval.val_batch_size, 1, config.train.resolved_grad_accum(1),
                               config.train.train_seq_len);
            if (!args->token_losses.empty()) options.token_losses = &losses;
            Progress progress("eval", (stream.numel() - 1) / options.seq_len, "seqs",
                              config.runtime.quiet);
            options.on_batch = [&](int64_t done, int64_t) { progress.update(done); };
            const ValResult r = evaluate_val(model, stream, luts, options);
            progress.finish();

            fmt::print("val_tokens:{} val_bytes:{:.0f} seq_len:{}\n", r.token_count, r.byte_count,
                       options.seq_len);
            fmt::print("{} val_loss:{:.4f} val_bpb:{:.4f} eval_time:{:.0f}ms\n", label, r.val_loss,
                       r.val_bpb, 1000.0 * r.seconds);
            fmt::print("{}_exact val_loss:{:.8f} val_bpb:{:.8f}\n", label, r.val_loss, r.val_bpb);
            if (!args->token_losses.empty()) {
              write_token_losses(args->token_losses, stream, losses);
              fmt::print("token losses: {} ({} targets)\n", args->token_losses, losses.size());
            }
            return 0;
          }};
}

}  // namespace pgolf
