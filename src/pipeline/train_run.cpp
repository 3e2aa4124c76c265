#include "pipeline/train_run.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "common/device.h"
#include "common/format.h"
#include "common/fs.h"
#include "common/log.h"
#include "data/shard.h"
#include "eval/final_eval.h"
#include "eval/val_adapt.h"
#include "export/export.h"
#include "io/safetensors.h"
#include "model/weights.h"
#include "pipeline/run_context.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

namespace pgolf {
namespace {

// The reference's start-up lines, after the model is built.
void log_setup(RunContext& ctx, RunLog& log, int64_t accum) {
  const Config& config = ctx.config;
  const TrainConfig& tc = config.train;
  log.print(fmt::format("model_params:{}", parameter_count(ctx.model)));
  log.print(fmt::format("world_size:{} grad_accum_steps:{}", ctx.group->world_size(), accum));
  log.print(fmt::format("process_group:{}", ctx.group->backend()));  // none, gloo or nccl
  log.print(fmt::format("device:{} compute_dtype:{} threads:{}", ctx.device.str(),
                        compute_dtype_name(ctx.model->compute_dtype()), at::get_num_threads()));
  log.print(fmt::format("attention_mode:gqa num_heads:{} num_kv_heads:{}", config.model.num_heads,
                        config.model.num_kv_heads));
  const bool tied = config.model.tie_embeddings;
  log.print(fmt::format("tie_embeddings:{} embed_lr:{} head_lr:{} matrix_lr:{} scalar_lr:{}",
                        tied ? "True" : "False", tied ? tc.tied_embed_lr : tc.embed_lr,
                        tied ? 0.0 : tc.head_lr, tc.matrix_lr, tc.scalar_lr));
  log.print(
      fmt::format("train_batch_tokens:{} train_seq_len:{} iterations:{} warmup_steps:{} "
                  "max_wallclock_seconds:{:.3f}",
                  tc.train_batch_tokens, tc.train_seq_len, tc.iterations, tc.warmup_steps,
                  tc.max_wallclock_seconds));
  log.print(fmt::format("seed:{}", tc.seed));
}

// Ranks other than 0, once training is done: wait for rank 0's artifact and
// take part in the final evaluation (sliding windows, TTT), if it has one.
void join_final_evaluation(RunContext& ctx, const std::filesystem::path& run_dir) {
  ctx.group->barrier();
  load_weights(ctx.model,
               read_artifact_model(run_dir / artifact_file_name(ctx.config.quant)).weights);
  FinalEvalOptions fe;
  fe.group = ctx.group.get();
  fe.quiet = true;
  run_final_evaluation(ctx.model, ctx.val_tokens, ctx.luts, ctx.config, fe);
}

}  // namespace

std::filesystem::path prepare_run_dir(const Config& config) {
  const std::string run_id = config.runtime.run_id.empty()
                                 ? now_string(TimeFormat::kLocalStamp) + "_" + config.preset
                                 : config.runtime.run_id;
  const auto dir = std::filesystem::path(config.runtime.run_dir) / run_id;
  std::filesystem::create_directories(dir);
  return dir;
}

TrainSummary run_training(const Config& config, const std::filesystem::path& run_dir, bool resume) {
  // Set-up. Rank 0 logs, checkpoints and exports.
  RunContext ctx = RunContext::open(config);
  const bool master = ctx.master();
  ctx.open_run_logs(run_dir);
  RunLog& log = ctx.log;
  if (!resume && master) write_file_atomic(run_dir / "config.json", to_json(config).dump(2) + "\n");
  log.file_only(describe(config));
  ctx.load_validation();
  const auto train_files = shard_files(config.data.train_glob(), "training shards");
  log.print(fmt::format("val_bpb:enabled tokenizer_kind=sentencepiece tokenizer_path={}",
                        config.data.tokenizer_path));
  log.print(fmt::format("train_loader:dataset:{} train_shards:{}",
                        std::filesystem::path(config.data.data_path).filename().string(),
                        train_files.size()));
  log.print(fmt::format("val_loader:shards pattern={} tokens:{}", config.data.val_glob(),
                        ctx.val_tokens.numel() - 1));
  ctx.init_model();

  // Training.
  bool validate_alone = false;  // after training rank 0 validates by itself
  Trainer::Io io;
  io.validate = [&] { return ctx.validate({}, validate_alone); };
  io.log = &log;
  io.metrics = &ctx.metrics;
  io.checkpoint = run_dir / kCheckpointFile;
  Trainer trainer(config, ctx.model, *ctx.group, ctx.device, io);
  log_setup(ctx, log, trainer.grad_accum());
  if (resume) {
    trainer.resume();
  } else {
    trainer.warm_up();
  }
  const TrainResult trained = trainer.run();
  TrainSummary summary;
  summary.run_dir = run_dir;
  summary.steps = trained.steps;
  summary.train_time_ms = trained.train_time_ms;
  summary.final_train_loss = trained.final_train_loss;
  summary.pre_export = trained.last_val;
  if (master) trainer.save_checkpoint();
  ctx.group->barrier();

  // From here on rank 0 works alone (averaging, export, the artifact's
  // validation on the whole split); the others wait for the final evaluation
  // if there is one to share, or are done.
  const bool group_final_eval =
      ctx.group->active() && (config.eval.eval_stride > 0 || config.ttt.enabled());
  if (!master) {
    if (group_final_eval) join_final_evaluation(ctx, run_dir);
    return summary;
  }
  validate_alone = true;

  // The weights the entry exports, evaluated again so the quantisation gap is
  // measured from what is exported.
  const std::string averaged = trainer.apply_averaged_weights();
  if (!averaged.empty()) {
    summary.pre_export = io.validate();
    log.print(fmt::format("post_{} val_loss:{:.4f} val_bpb:{:.4f}", averaged.substr(0, 3),
                          summary.pre_export.val_loss, summary.pre_export.val_bpb));
    log.print(fmt::format("weights:{} applied", averaged));
  }
  // NON-COMPLIANT #1406 dTTT (spec §5.6): the exported weights fine-tuned on
  // the validation split itself, in train mode with late QAT still on.
  nlohmann::json prequant_adapt;
  if (config.ttt.val_adapt == ValAdapt::kPrequant) {
    const ValAdaptResult adapted =
        adapt_on_validation(ctx.model, ctx.val_tokens, config.ttt, config.train.train_seq_len,
                            nullptr, [&](const std::string& line) { log.print(line); });
    prequant_adapt = adapted.to_json();
    summary.pre_export = io.validate();
    log.print(fmt::format("DIAGNOSTIC post_ttt val_loss:{:.4f} val_bpb:{:.4f} NON_COMPLIANT",
                          summary.pre_export.val_loss, summary.pre_export.val_bpb));
  }
  if (trainer.late_qat().on()) trainer.late_qat().set(false);

  // Export: fp32 weights, then the artifact by the quantization scheme, then
  // what the artifact holds validated (the number the challenge scores).
  write_safetensors(run_dir / "final_model.safetensors", state_dict(ctx.model),
                    {{"format", "pt"}, {"pgolf_config", stored_config_json(config).dump()}});
  log.print(fmt::format("Serialized model: {} bytes",
                        std::filesystem::file_size(run_dir / "final_model.safetensors")));
  ExportContext export_ctx;
  export_ctx.model = ctx.model;
  export_ctx.config = &config;
  export_ctx.run_dir = run_dir;
  export_ctx.log = &log;
  export_ctx.validate = io.validate;
  export_ctx.next_train_inputs = [&] { return trainer.next_batch().inputs; };
  export_ctx.pre_export = summary.pre_export;
  const ExportResult exported = export_and_validate(export_ctx);
  summary.artifact_bytes = exported.size.model_bytes;
  summary.roundtrip = exported.roundtrip;

  // Sliding windows and score-first TTT on the round-tripped weights.
  if (group_final_eval) ctx.group->barrier();
  FinalEvalOptions fe;
  fe.prefix = final_eval_prefix(exported.roundtrip_name);
  fe.group = group_final_eval ? ctx.group.get() : nullptr;
  fe.print = [&](const std::string& line) { log.print(line); };
  fe.quiet = config.runtime.quiet;
  const FinalEvalResult final_eval =
      run_final_evaluation(ctx.model, ctx.val_tokens, ctx.luts, config, fe);
  nlohmann::json evaluation = final_eval.to_json();
  if (!prequant_adapt.is_null()) {
    evaluation["val_adapt"] = prequant_adapt;
    evaluation["score_first"] = false;
  }

  const SizeReport& size = exported.size;
  nlohmann::json results = {{"preset", config.preset},
                            {"steps", summary.steps},
                            {"train_time_ms", summary.train_time_ms},
                            {"final_train_loss", summary.final_train_loss},
                            {"pre_export", val_record(summary.pre_export)},
                            {"roundtrip", val_record(summary.roundtrip)},
                            {"artifact", exported.artifact_path.filename().string()},
                            {"artifact_bytes", size.model_bytes},
                            {"code_bytes", size.code_bytes},
                            {"total_bytes", size.total_bytes},
                            {"fits_cap", size.fits()},
                            {"export", exported.details},
                            {"evaluation", evaluation}};
  if (!final_eval.non_compliant.empty()) results["non_compliant"] = final_eval.non_compliant;
  write_file_atomic(run_dir / "results.json", results.dump(2) + "\n");
  ctx.metrics.write({{"event", "final"}, {"results", results}});
  return summary;
}

}  // namespace pgolf
