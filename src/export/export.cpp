#include "export/export.h"

#include <fmt/format.h>

#include <chrono>

#include "common/code_size.h"
#include "common/error.h"
#include "common/fs.h"
#include "common/progress.h"
#include "eval/val_adapt.h"
#include "export/calibration.h"
#include "model/weights.h"
#include "quant/prune.h"

namespace pgolf {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

bool is_banks(const Config& config) { return config.model.weight_layout == WeightLayout::kBanks; }

// §3.7: Hessians of every quantised matrix, from the configured source.
Hessians calibrate(ExportContext& ctx, const QuantScheme& scheme) {
  const Config& config = *ctx.config;
  const QuantConfig& q = config.quant;
  RunLog& log = *ctx.log;
  const CalibrationOptions options = scheme.id == SchemeId::kPr562    ? calibration_pr562()
                                     : scheme.id == SchemeId::kPr1855 ? calibration_pr1855()
                                                                      : calibration_pr1406();
  const auto t0 = Clock::now();
  Hessians hessians;
  std::string source;
  if (q.gptq_calib == CalibrationSource::kTrain) {
    PGOLF_CHECK(static_cast<bool>(ctx.next_train_inputs),
                "GPTQ_CALIB=train: no training batches to calibrate on");
    log.print(fmt::format("gptq:collecting hessians from training data ({} batches)...",
                          q.gptq_calib_batches));
    Progress progress("gptq calibration", q.gptq_calib_batches, "batches", config.runtime.quiet);
    const CalibrationInputs counted = [&] {  // counts each batch as it is taken
      progress.advance();
      return ctx.next_train_inputs();
    };
    hessians = collect_hessians(ctx.model, counted, q.gptq_calib_batches, options);
    progress.finish();
    source = "training data";
  } else {
    const int64_t length = config.train.train_seq_len;
    log.print(fmt::format(
        "gptq:generating autoregressive calibration data ({} seqs x {} tokens, temp=0.8)...",
        q.gptq_calib_batches, length));
    const auto g0 = Clock::now();
    const torch::Tensor seqs = generate_calibration_sequences(
        ctx.model, q.gptq_calib_batches, length, 0.8, 8, static_cast<uint64_t>(config.train.seed));
    log.print(
        fmt::format("gptq:generated {} sequences in {:.1f}s", seqs.size(0), ms_since(g0) / 1000.0));
    // One sequence per forward, tokens [0, length - 1) as #1406's inputs.
    int64_t next = 0;
    const auto next_sequence = [&] {
      const torch::Tensor ids = seqs.slice(0, next, next + 1).slice(1, 0, length - 1).clone();
      ++next;
      return ids;
    };
    Progress progress("gptq calibration", seqs.size(0), "seqs", config.runtime.quiet);
    const CalibrationInputs counted = [&] {
      progress.advance();
      return next_sequence();
    };
    hessians = collect_hessians(ctx.model, counted, seqs.size(0), options);
    progress.finish();
    source = "AR self-gen";
  }
  log.print(fmt::format("gptq:collected hessians for {} layers ({})", hessians.size(), source));
  log.print(fmt::format(
      "gptq:calibration_time:{:.0f}ms (after the training clock stopped; a record run must fit "
      "it inside the 600s training budget)",
      ms_since(t0)));
  return hessians;
}

}  // namespace

QuantScheme scheme_for(const QuantConfig& quant) {
  QuantScheme scheme;
  scheme.id = quant.format;
  scheme.gptq_lite = quant.gptq_lite;
  scheme.all_int5 = quant.all_int5;
  scheme.storage = quant.code_storage;
  scheme.sdclip = {static_cast<int>(quant.matrix_bits),
                   static_cast<int>(quant.embed_bits),
                   quant.matrix_clip_sigmas,
                   quant.mlp_clip_sigmas,
                   quant.attn_clip_sigmas,
                   quant.embed_clip_sigmas,
                   quant.gated_attn_quant_gate};
  scheme.lqer = {quant.lqer_enabled,     quant.lqer_rank,         quant.lqer_top_k,
                 quant.lqer_factor_bits, quant.lqer_asym_enabled, quant.lqer_asym_group};
  return scheme;
}

std::string artifact_file_name(const QuantConfig& quant) {
  return quant.format == SchemeId::kInt8Baseline ? "final_model.int8.pgolf"
                                                 : "final_model.int6.pgolf";
}

StateDict export_state_dict(GPT& model) {
  const StateDict weights = state_dict(model);
  if (!model->qo_bank.defined()) return weights;
  return unbank_state_dict(weights, model->config().num_layers);
}

std::string encode_for_config(const QuantizedModel& model, const Config& config) {
  auto config_json = stored_config_json(config);
  // Weights fine-tuned on the validation split (#1406's dTTT) carry the mark.
  if (config.ttt.val_adapt == ValAdapt::kPrequant) {
    config_json["non_compliant"] = non_compliant_reason(config.ttt.val_adapt);
  }
  if (config.quant.compressor == Compressor::kAuto) {
    return encode_artifact_smallest(model, config_json);
  }
  const Codec codec = parse_codec(name_of(config.quant.compressor));
  const int level =
      config.quant.level > 0 ? static_cast<int>(config.quant.level) : default_level(codec);
  return encode_artifact(model, config_json, codec, level);
}

int64_t selective_prune_target(const QuantConfig& quant, int64_t code_bytes) {
  if (quant.target_bytes != 0) return quant.target_bytes;
  return SizeReport::kCap - code_bytes;
}

ExportResult export_and_validate(ExportContext& ctx) {
  const Config& config = *ctx.config;
  const QuantConfig& q = config.quant;
  RunLog& log = *ctx.log;
  ExportResult result;
  nlohmann::json& details = result.details;
  const QuantScheme scheme = scheme_for(q);
  details["scheme"] = std::string(scheme_name(scheme.id));
  details["code_storage"] = name_of(q.code_storage);

  // Unbank (#1406): the live model's matrices under per-layer names.
  StateDict weights = export_state_dict(ctx.model);
  if (is_banks(config)) {
    log.print(
        fmt::format("export:unbanked {} layers into per-layer matrices", config.model.num_layers));
  }

  // §3.8: magnitude pruning of the live model, in place.
  const double prune_frac = q.resolved_prune_frac();
  if (prune_frac > 0) {
    torch::NoGradGuard no_grad;
    const MagnitudePruneStats stats = magnitude_prune(weights, prune_frac);
    log.print(fmt::format("magnitude_pruning: frac={} tensors:{} zeroed:{} of {}", prune_frac,
                          stats.tensors, stats.zeroed, stats.elements));
    details["magnitude_pruning"] = {{"frac", prune_frac},
                                    {"tensors", stats.tensors},
                                    {"zeroed", stats.zeroed},
                                    {"elements", stats.elements}};
  }

  // §3.7: calibration for full GPTQ.
  Hessians hessians;
  if (q.gptq) {
    const auto t0 = Clock::now();
    hessians = calibrate(ctx, scheme);
    details["gptq"] = {{"calibration", name_of(q.gptq_calib)},
                       {"batches", q.gptq_calib_batches},
                       {"layers", hessians.size()},
                       {"calibration_ms", ms_since(t0)}};
  }

  // §3.5/§3.6: quantize by the scheme.
  const auto tq = Clock::now();
  QuantizedModel quantized = quantize_model(weights, scheme, q.gptq ? &hessians : nullptr);
  log.print(fmt::format("quantize:scheme {} ({}) in {:.0f}ms", scheme_name(scheme.id),
                        quantized.format, ms_since(tq)));
  const std::string label(quant_label(quantized.format));

  // §3.9: selective ±1 pruning, only while over the target (decimal cap - code).
  const int64_t code_bytes = code_size().bytes;
  const int64_t target = selective_prune_target(q, code_bytes);
  const auto tc = Clock::now();
  std::string bytes = encode_for_config(quantized, config);
  const double compress_ms = ms_since(tc);
  log.print(fmt::format("serialize:{} {} bytes in {:.0f}ms", name_of(q.compressor), bytes.size(),
                        compress_ms));
  details["compress_ms"] = compress_ms;
  if (target > 0 && static_cast<int64_t>(bytes.size()) > target) {
    const auto size_of = [&](const QuantizedModel& m) {
      return static_cast<int64_t>(encode_for_config(m, config).size());
    };
    const SelectivePruneResult pr = selective_prune(quantized, target, size_of);
    log.print(fmt::format("selective_prune: {} ±1 candidates, unpruned={} bytes target={} bytes",
                          pr.candidates, pr.size_before, target));
    log.print(fmt::format("selective_prune: pruned {} of {} ±1 values, {} bytes ({} size evals)",
                          pr.pruned, pr.candidates, pr.size_after, pr.size_evaluations));
    details["selective_prune"] = {{"candidates", pr.candidates},
                                  {"pruned", pr.pruned},
                                  {"target_bytes", target},
                                  {"bytes_before", pr.size_before},
                                  {"bytes_after", pr.size_after}};
    bytes = encode_for_config(quantized, config);
  } else if (target > 0 && quantized.format != kInt8Format) {
    log.print(
        fmt::format("selective_prune: {} bytes, target={} bytes: already fits, no pruning "
                    "needed",
                    bytes.size(), target));
  }

  // The artifact, its size and the size report.
  result.artifact_path = ctx.run_dir / artifact_file_name(q);
  write_file_atomic(result.artifact_path, bytes);
  const int64_t artifact_bytes = static_cast<int64_t>(bytes.size());
  const LoadedArtifact loaded = read_artifact(result.artifact_path);
  const std::string codec(codec_name(loaded.info.codec));
  const QuantStats stats = quant_stats(quantized);
  result.size = size_report(artifact_bytes, code_bytes);
  log.print(fmt::format(
      "Serialized model {}+{}: {} bytes (payload:{} raw:{} payload_ratio:{:.2f}x)", label, codec,
      artifact_bytes, stats.int8_payload_bytes, loaded.info.uncompressed_bytes,
      static_cast<double>(stats.baseline_tensor_bytes) /
          std::max<int64_t>(stats.int8_payload_bytes, 1)));
  log.print(fmt::format("Code size: {} bytes ({} files, {} raw bytes, bundled and compressed)",
                        code_bytes, code_size().files, code_size().raw_bytes));
  std::string breakdown = code_size_breakdown();
  while (!breakdown.empty() && breakdown.back() == '\n') breakdown.pop_back();
  log.print(breakdown);
  log.print(fmt::format("Total submission size {}+{}: {}", label, codec, result.size.describe()));
  PGOLF_CHECK(result.size.fits() || q.allow_oversize,
              "artifact + code = {} bytes exceeds the 16,000,000-byte cap (set ALLOW_OVERSIZE=1 "
              "to keep it anyway)",
              result.size.total_bytes);

  // Round trip: what the artifact holds, into the model, validated.
  load_weights(ctx.model, dequantize(loaded.model));
  result.roundtrip = ctx.validate();
  const std::string name = roundtrip_label(loaded.info.quant_format, loaded.info.codec);
  result.roundtrip_name = name;
  log.print(fmt::format("{} val_loss:{:.4f} val_bpb:{:.4f} eval_time:{:.0f}ms", name,
                        result.roundtrip.val_loss, result.roundtrip.val_bpb,
                        1000.0 * result.roundtrip.seconds));
  log.print(fmt::format("{}_exact val_loss:{:.8f} val_bpb:{:.8f}", name, result.roundtrip.val_loss,
                        result.roundtrip.val_bpb));
  const double gap_bpb = result.roundtrip.val_bpb - ctx.pre_export.val_bpb;
  const double gap_loss = result.roundtrip.val_loss - ctx.pre_export.val_loss;
  log.print(fmt::format("quantization_gap val_bpb:{:+.8f} val_loss:{:+.8f} ({} - pre-export)",
                        gap_bpb, gap_loss, name));
  details["quant_format"] = loaded.info.quant_format;
  details["codec"] = codec;
  details["quant_gap"] = {{"val_bpb", gap_bpb}, {"val_loss", gap_loss}};
  return result;
}

}  // namespace pgolf
