#include "train/trainer.h"

#include <fmt/format.h>

#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>

#include "artifact/artifact.h"
#include "common/code_size.h"
#include "common/device.h"
#include "common/error.h"
#include "common/fs.h"
#include "common/progress.h"
#include "data/prefetch_loader.h"
#include "data/shard.h"
#include "data/tokenizer.h"
#include "eval/final_eval.h"
#include "eval/val_adapt.h"
#include "io/safetensors.h"
#include "model/weights.h"
#include "quant/int8.h"
#include "train/averaging.h"
#include "train/checkpoint.h"
#include "train/distributed.h"
#include "train/export.h"
#include "train/grad_clip.h"
#include "train/schedule.h"

namespace pgolf {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

nlohmann::json val_json(const ValResult& r) {
  return {{"val_loss", r.val_loss},
          {"val_bpb", r.val_bpb},
          {"tokens", r.token_count},
          {"bytes", r.byte_count},
          {"eval_time_ms", 1000.0 * r.seconds}};
}

// Everything the loop needs, built once.
struct Setup {
  torch::Device device = torch::kCPU;
  ByteLuts luts;
  torch::Tensor val_tokens;
  GPT model{nullptr};
  int64_t world_size = 1, rank = 0, accum = 1;
};

}  // namespace

int64_t write_quantized_artifact(const std::filesystem::path& path, const QuantizedModel& model,
                                 const Config& config) {
  const std::string bytes = encode_for_config(model, config);
  write_file_atomic(path, bytes);
  return static_cast<int64_t>(bytes.size());
}

std::filesystem::path prepare_run_dir(const Config& config) {
  std::string run_id = config.runtime.run_id;
  if (run_id.empty()) {
    const std::time_t now = std::time(nullptr);
    std::tm local{};
    localtime_r(&now, &local);
    char stamp[32];
    std::strftime(stamp, sizeof(stamp), "%Y%m%d_%H%M%S", &local);
    run_id = std::string(stamp) + "_" + config.preset;
  }
  const auto dir = std::filesystem::path(config.runtime.run_dir) / run_id;
  std::filesystem::create_directories(dir);
  return dir;
}

torch::Tensor train_step(GPT& model, Optimizers& optimizers, const BatchSource& next_batch,
                         const TrainConfig& config, int64_t accum, torch::Device device,
                         double lr_scale, double muon_momentum, ProcessGroup* group) {
  optimizers.zero_grad();
  auto train_loss = torch::zeros({}, torch::TensorOptions().device(device));
  for (int64_t micro = 0; micro < accum; ++micro) {
    const TokenBatch batch = next_batch();
    auto loss = model->loss(batch.inputs.to(device, /*non_blocking=*/true),
                            batch.targets.to(device, /*non_blocking=*/true));
    train_loss += loss.detach();
    (loss / static_cast<double>(accum)).backward();
  }
  train_loss /= static_cast<double>(accum);
  if (group && group->active()) {
    // Data parallel: every rank's gradient is the mean over its micro-batches;
    // their mean over ranks is the gradient of the whole global batch.
    std::vector<torch::Tensor> grads;
    for (auto& p : model->parameters()) {
      if (p.grad().defined()) grads.push_back(p.grad());
    }
    // The logged loss is the global batch's too (one more scalar).
    grads.push_back(train_loss);
    group->all_reduce_mean(grads);
  }
  optimizers.set_muon_momentum(muon_momentum);
  optimizers.set_lr_scale(lr_scale);
  if (config.grad_clip_norm > 0) {
    // LibTorch's clip_grad_norm_ returns the norm as a double: a host sync.
    clip_grad_norm_no_sync(model->parameters(), config.grad_clip_norm);
  }
  optimizers.step();
  optimizers.zero_grad();
  return train_loss;
}

TrainSummary train(const Config& config, const std::filesystem::path& run_dir, bool resume) {
  const TrainConfig& tc = config.train;
  // Ranks: torchrun's environment (or `pgolf train --nproc`); rank 0 logs,
  // checkpoints and exports.
  Setup s;
  s.device = resolve_device(config.runtime.device);
  ProcessGroup group(dist_env_from_environment(), s.device);
  s.rank = group.rank();
  s.world_size = group.world_size();
  RunLog log(run_dir / "train.log", /*master=*/group.master());
  MetricsLog metrics(run_dir / "metrics.jsonl", /*master=*/group.master());
  if (!resume && group.master()) {
    write_file_atomic(run_dir / "config.json", to_json(config).dump(2) + "\n");
  }
  log.file_only(describe(config));

  configure_threads(config.runtime.threads);
  s.accum = tc.resolved_grad_accum(s.world_size);
  torch::manual_seed(static_cast<uint64_t>(tc.seed));

  const Tokenizer tokenizer = Tokenizer::load(config.data.tokenizer_path);
  check_vocab(tokenizer, config.model.vocab_size);
  s.val_tokens = validation_stream(config);
  s.luts = build_byte_luts(tokenizer, config.model.vocab_size).to(s.device);
  const auto train_files = shard_files(config.data.train_glob(), "training shards");
  log.print(fmt::format("val_bpb:enabled tokenizer_kind=sentencepiece tokenizer_path={}",
                        config.data.tokenizer_path));
  log.print(fmt::format("train_loader:dataset:{} train_shards:{}",
                        std::filesystem::path(config.data.data_path).filename().string(),
                        train_files.size()));
  log.print(fmt::format("val_loader:shards pattern={} tokens:{}", config.data.val_glob(),
                        s.val_tokens.numel() - 1));

  // Built on the CPU from the seeded generator (same draws on every device),
  // then moved.
  s.model = GPT(config.model);
  s.model->to(s.device);
  s.model->set_compute_dtype(parse_compute_dtype(config.runtime.dtype, s.device));
  if (group.active()) {
    // Every rank drew the same weights from the same seed; make it certain.
    std::vector<torch::Tensor> weights;
    for (auto& p : s.model->parameters()) weights.push_back(p.detach());
    group.broadcast(weights);
  }
  Optimizers optimizers(s.model, tc);
  optimizers.muon().set_process_group(&group);
  log.print(fmt::format("model_params:{}", parameter_count(s.model)));
  log.print(fmt::format("world_size:{} grad_accum_steps:{}", s.world_size, s.accum));
  log.print(fmt::format("device:{} compute_dtype:{} threads:{}", s.device.str(),
                        compute_dtype_name(s.model->compute_dtype()), at::get_num_threads()));
  log.print(fmt::format("attention_mode:gqa num_heads:{} num_kv_heads:{}", config.model.num_heads,
                        config.model.num_kv_heads));
  const double token_lr = config.model.tie_embeddings ? tc.tied_embed_lr : tc.embed_lr;
  log.print(fmt::format("tie_embeddings:{} embed_lr:{} head_lr:{} matrix_lr:{} scalar_lr:{}",
                        config.model.tie_embeddings ? "True" : "False", token_lr,
                        config.model.tie_embeddings ? 0.0 : tc.head_lr, tc.matrix_lr,
                        tc.scalar_lr));
  log.print(
      fmt::format("train_batch_tokens:{} train_seq_len:{} iterations:{} warmup_steps:{} "
                  "max_wallclock_seconds:{:.3f}",
                  tc.train_batch_tokens, tc.train_seq_len, tc.iterations, tc.warmup_steps,
                  tc.max_wallclock_seconds));
  log.print(fmt::format("seed:{}", tc.seed));

  // The next micro-batch is read while the current step computes; on CUDA it
  // is pinned, so that train_step's copy to the device does not block.
  auto make_loader = [&] {
    return std::make_unique<PrefetchingTokenLoader>(
        std::make_unique<DistributedTokenLoader>(config.data.train_glob(), config.model.vocab_size,
                                                 s.rank, s.world_size),
        PrefetchingTokenLoader::Shape{tc.train_batch_tokens, tc.train_seq_len, s.accum},
        /*pin_memory=*/s.device.is_cuda());
  };
  auto loader = make_loader();
  const int64_t val_seqs =
      val_batch_seqs(config.eval.val_batch_size, s.world_size, s.accum, tc.train_seq_len);
  auto next_batch = [&] { return loader->next_batch(); };
  auto validate = [&]() {
    ValOptions options;
    options.seq_len = tc.train_seq_len;
    options.batch_seqs = val_seqs;
    options.rank = s.rank;
    options.world_size = s.world_size;
    ValResult r = evaluate_val(s.model, s.val_tokens, s.luts, options);
    if (s.world_size > 1) all_reduce_sums(r, &group);
    return r;
  };

  // Warm-up: the reference runs these steps to compile, then restores the
  // initial weights and optimizer state and restarts the data stream.
  if (!resume && tc.warmup_steps > 0) {
    StateDict initial;
    for (auto& [name, t] : state_dict(s.model)) initial.emplace_back(name, t.clone());
    for (int64_t i = 0; i < tc.warmup_steps; ++i) {
      // As in the reference, warm-up runs at the base LRs and the optimizer's
      // constructed momentum; none of it survives the restore below.
      train_step(s.model, optimizers, next_batch, tc, s.accum, s.device, 1.0, tc.muon_momentum,
                 &group);
      if (tc.warmup_steps <= 20 || (i + 1) % 10 == 0 || i + 1 == tc.warmup_steps) {
        log.print(fmt::format("warmup_step:{}/{}", i + 1, tc.warmup_steps));
      }
    }
    load_state_dict(s.model, initial);
    optimizers.reset_state();
    loader = make_loader();
  }

  // The recipe's state: weight averages (initialised from the weights
  // training starts from) and the late-QAT switch.
  const auto params = s.model->parameters();
  std::unique_ptr<Ema> ema;
  if (tc.ema_enabled) ema = std::make_unique<Ema>(params, tc.ema_decay);
  std::unique_ptr<Swa> swa;
  if (tc.swa_enabled) swa = std::make_unique<Swa>(tc.swa_every, tc.swa_start_frac);
  const FakeQuantSpec qat_spec{tc.qat_bits == 5 ? 15 : 31, tc.qat_match_export};
  bool qat_on = false;
  const CheckpointParts parts{&s.model, &optimizers, ema.get(), swa.get()};

  // ---------------------------------------------------------------------------
  // Main loop: the reference's control flow, step by step.
  TrainSummary summary;
  summary.run_dir = run_dir;
  double training_time_ms = 0;
  std::optional<int64_t> stop_after_step;
  int64_t step = 0;
  const auto checkpoint_path = run_dir / kCheckpointFile;
  auto checkpoint = [&] {
    save_checkpoint(checkpoint_path, config, parts,
                    {step, training_time_ms, loader->position(), qat_on, stop_after_step});
  };
  if (resume) {
    const TrainingProgress restored = load_checkpoint(checkpoint_path, config, parts);
    step = restored.step;
    training_time_ms = restored.training_time_ms;
    stop_after_step = restored.stop_after_step;
    loader->seek(restored.data);
    qat_on = restored.qat_on;
    if (qat_on) s.model->set_qat(qat_spec, tc.qat_all_matrices);
    log.print(fmt::format("resumed: step:{} train_time:{:.0f}ms from {}", step, training_time_ms,
                          checkpoint_path.string()));
  }
  const double max_wallclock_ms = 1000.0 * tc.max_wallclock_seconds;
  Progress progress("train", tc.iterations, "steps", config.runtime.quiet);
  synchronize(s.device);
  auto t0 = Clock::now();
  while (true) {
    const bool last_step = step == tc.iterations || (stop_after_step && step >= *stop_after_step);
    const bool should_validate =
        last_step || (tc.val_loss_every > 0 && step % tc.val_loss_every == 0);
    if (should_validate) {
      synchronize(s.device);
      training_time_ms += ms_since(t0);
      summary.pre_export = validate();
      log.print(
          fmt::format("step:{}/{} val_loss:{:.4f} val_bpb:{:.4f} train_time:{:.0f}ms "
                      "step_avg:{:.2f}ms",
                      step, tc.iterations, summary.pre_export.val_loss, summary.pre_export.val_bpb,
                      training_time_ms, training_time_ms / std::max<int64_t>(step, 1)));
      auto record = val_json(summary.pre_export);
      record["event"] = "val";
      record["step"] = step;
      record["train_time_ms"] = training_time_ms;
      metrics.write(record);
      synchronize(s.device);
      t0 = Clock::now();
    }
    if (last_step) {
      if (stop_after_step && step < tc.iterations) {
        log.print(fmt::format("stopping_early: wallclock_cap train_time:{:.0f}ms step:{}/{}",
                              training_time_ms, step, tc.iterations));
      }
      break;
    }

    const double elapsed_ms = training_time_ms + ms_since(t0);
    const double scale = lr_multiplier(tc, step, elapsed_ms);
    const double momentum = muon_momentum_at(tc, step);
    if (tc.late_qat && !qat_on && scale < tc.qat_threshold) {
      qat_on = true;
      s.model->set_qat(qat_spec, tc.qat_all_matrices);
      log.print(fmt::format("late_qat:enabled step:{} scale:{:.4f}", step, scale));
    }
    auto train_loss =
        train_step(s.model, optimizers, next_batch, tc, s.accum, s.device, scale, momentum, &group);
    if (ema) ema->update(params);
    ++step;
    if (swa && swa->due(step, scale)) {
      swa->collect(params);
      if (swa->count() == 1) log.print(fmt::format("swa:start step:{}", step));
    }

    // Every rank stops after the same step: the slowest rank's clock decides.
    const double approx_ms = group.all_reduce_max(training_time_ms + ms_since(t0));
    const bool log_train =
        tc.train_log_every > 0 && (step <= 10 || step % tc.train_log_every == 0 || stop_after_step);
    if (log_train) {
      summary.final_train_loss = train_loss.item<double>();
      log.print(fmt::format("step:{}/{} train_loss:{:.4f} train_time:{:.0f}ms step_avg:{:.2f}ms",
                            step, tc.iterations, summary.final_train_loss, approx_ms,
                            approx_ms / step));
      metrics.write({{"event", "train"},
                     {"step", step},
                     {"train_loss", summary.final_train_loss},
                     {"train_time_ms", approx_ms},
                     {"lr_scale", scale},
                     {"muon_momentum", momentum},
                     {"tokens", step * tc.train_batch_tokens}});
    }
    if (max_wallclock_ms > 0) {
      // Under a time cap the step count is set by the clock: show the steps
      // the remaining time allows at the mean step time so far.
      const double remaining_steps =
          std::max(max_wallclock_ms - approx_ms, 0.0) / (approx_ms / step);
      progress.set_total(
          std::min<int64_t>(tc.iterations, step + static_cast<int64_t>(remaining_steps)));
    }
    progress.update(step, log_train ? fmt::format("loss {:.4f}", summary.final_train_loss) : "");
    if (!stop_after_step && max_wallclock_ms > 0 && approx_ms >= max_wallclock_ms) {
      stop_after_step = step;
    }
    if (tc.checkpoint_every > 0 && step % tc.checkpoint_every == 0) {
      synchronize(s.device);
      training_time_ms += ms_since(t0);  // the clock pauses while the checkpoint is written
      if (group.master()) checkpoint();
      group.barrier();
      t0 = Clock::now();
    }
  }
  progress.finish();
  summary.steps = step;
  summary.train_time_ms = training_time_ms;
  // From here on rank 0 works alone (checkpoint, averaging, export, the
  // artifact's validation on the whole split); the other ranks are done.
  if (group.master()) checkpoint();
  group.barrier();
  // The final evaluation (sliding windows, TTT) runs on every rank: the others
  // wait for rank 0's artifact and load it.
  const bool group_final_eval =
      group.active() && (config.eval.eval_stride > 0 || config.ttt.enabled());
  if (!group.master()) {
    if (!group_final_eval) return summary;
    group.barrier();
    const LoadedArtifact loaded = read_artifact(run_dir / artifact_file_name(config.quant));
    load_weights(s.model, dequantize(loaded.model));
    FinalEvalOptions fe;
    fe.group = &group;
    fe.quiet = true;
    run_final_evaluation(s.model, s.val_tokens, s.luts, config, fe);
    return summary;
  }
  s.rank = 0;
  s.world_size = 1;

  // The weights the entry exports: its EMA (#1406), else its SWA mean
  // (#461/#456/#562); evaluated again so the quantisation gap is measured
  // from what is exported. Late QAT is switched off before export.
  std::string averaged;
  if (ema) {
    ema->apply_to(params);
    averaged = "ema";
  } else if (swa && tc.swa_apply && swa->count() > 1) {
    swa->apply_to(params);
    averaged = fmt::format("swa({} checkpoints)", swa->count());
  }
  if (!averaged.empty()) {
    summary.pre_export = validate();
    log.print(fmt::format("post_{} val_loss:{:.4f} val_bpb:{:.4f}", averaged.substr(0, 3),
                          summary.pre_export.val_loss, summary.pre_export.val_bpb));
    log.print(fmt::format("weights:{} applied", averaged));
  }
  // NON-COMPLIANT #1406 dTTT (spec §5.6): the exported weights fine-tuned on
  // the validation split itself, in train mode with late QAT still on.
  nlohmann::json prequant_adapt;
  if (config.ttt.val_adapt == "prequant") {
    const ValAdaptResult adapted =
        adapt_on_validation(s.model, s.val_tokens, config.ttt, tc.train_seq_len, nullptr,
                            [&](const std::string& line) { log.print(line); });
    prequant_adapt = adapted.to_json();
    summary.pre_export = validate();
    log.print(fmt::format("DIAGNOSTIC post_ttt val_loss:{:.4f} val_bpb:{:.4f} NON_COMPLIANT",
                          summary.pre_export.val_loss, summary.pre_export.val_bpb));
  }
  if (qat_on) s.model->set_qat(FakeQuantSpec{}, false);

  // ---------------------------------------------------------------------------
  // Export: fp32 weights, then the artifact by the quantization scheme
  // (train/export.h), then evaluate what the artifact holds (the number the
  // challenge scores).
  const StateDict weights = state_dict(s.model);
  write_safetensors(run_dir / "final_model.safetensors", weights,
                    {{"format", "pt"}, {"pgolf_config", to_json(config).dump()}});
  log.print(fmt::format("Serialized model: {} bytes",
                        std::filesystem::file_size(run_dir / "final_model.safetensors")));

  ExportContext export_ctx;
  export_ctx.model = s.model;
  export_ctx.config = &config;
  export_ctx.run_dir = run_dir;
  export_ctx.log = &log;
  export_ctx.validate = validate;
  export_ctx.next_train_inputs = [&] { return next_batch().inputs; };
  export_ctx.pre_export = summary.pre_export;
  const ExportResult exported = export_and_validate(export_ctx);
  const SizeReport& size = exported.size;
  const auto& artifact_path = exported.artifact_path;
  summary.artifact_bytes = size.model_bytes;
  summary.roundtrip = exported.roundtrip;

  // Sliding windows and score-first TTT on the round-tripped weights.
  if (group_final_eval) group.barrier();
  FinalEvalOptions fe;
  fe.prefix = final_eval_prefix(exported.roundtrip_name);
  fe.group = group_final_eval ? &group : nullptr;
  fe.print = [&](const std::string& line) { log.print(line); };
  fe.quiet = config.runtime.quiet;
  const FinalEvalResult final_eval =
      run_final_evaluation(s.model, s.val_tokens, s.luts, config, fe);
  nlohmann::json evaluation = final_eval.to_json();
  if (!prequant_adapt.is_null()) {
    evaluation["val_adapt"] = prequant_adapt;
    evaluation["score_first"] = false;
  }

  nlohmann::json results = {{"preset", config.preset},
                            {"steps", summary.steps},
                            {"train_time_ms", summary.train_time_ms},
                            {"final_train_loss", summary.final_train_loss},
                            {"pre_export", val_json(summary.pre_export)},
                            {"roundtrip", val_json(summary.roundtrip)},
                            {"artifact", artifact_path.filename().string()},
                            {"artifact_bytes", size.model_bytes},
                            {"code_bytes", size.code_bytes},
                            {"total_bytes", size.total_bytes},
                            {"fits_cap", size.fits()},
                            {"export", exported.details},
                            {"evaluation", evaluation}};
  if (!final_eval.non_compliant.empty()) results["non_compliant"] = final_eval.non_compliant;
  write_file_atomic(run_dir / "results.json", results.dump(2) + "\n");
  metrics.write({{"event", "final"}, {"results", results}});
  return summary;
}

}  // namespace pgolf
