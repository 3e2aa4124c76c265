#include "pipeline/run_context.h"

#include <nlohmann/json.hpp>

#include "artifact/artifact.h"
#include "common/device.h"
#include "common/error.h"
#include "common/fast_kernels.h"
#include "common/host_memory.h"
#include "io/safetensors.h"
#include "model/weights.h"

namespace pgolf {

void apply_process_config(const ProcessConfig& process) {
  set_fast_kernels_enabled(process.fused_kernels);
  if (process.retain_host_memory) retain_freed_host_memory();
}

RunContext RunContext::open(const Config& config) {
  apply_process_config(config.process);
  RunContext ctx;
  ctx.config = config;
  const DistEnv env = dist_env_from_environment();
  ctx.device = resolve_device(config.runtime.device.str());
  // One GPU per rank: a launched rank takes its local one.
  if (ctx.device.is_cuda() && env.launched)
    ctx.device = torch::Device(torch::kCUDA, env.local_rank);
  ctx.group = std::make_shared<ProcessGroup>(env, ctx.device);
  ctx.log = RunLog({}, ctx.group->master());
  configure_threads(config.runtime.threads, env.local_world_size);
  return ctx;
}

void RunContext::open_run_logs(const std::filesystem::path& run_dir) {
  log = RunLog(run_dir / "train.log", master());
  metrics = MetricsLog(run_dir / "metrics.jsonl", master());
}

RunContext RunContext::open_with_data(const Config& config) {
  RunContext ctx = open(config);
  ctx.load_validation();
  return ctx;
}

void RunContext::load_validation() {
  load_tokenizer();
  val_tokens = validation_stream(config);
  // The validation byte sidecar (CaseOps data) replaces the piece-length tables.
  luts = validation_byte_luts(config, *tokenizer, val_tokens).to(device);
}

void RunContext::load_tokenizer() {
  tokenizer = Tokenizer::load(config.data.tokenizer_path);
  check_vocab(*tokenizer, config.model.vocab_size);
}

namespace {

// A model on the device, computing in the configured dtype.
GPT placed(GPT model, const Config& config, torch::Device device) {
  model->to(device);
  model->set_compute_dtype(resolve_compute_dtype(config.runtime.dtype, device));
  return model;
}

}  // namespace

GPT init_model(const Config& config, torch::Device device) {
  torch::manual_seed(static_cast<uint64_t>(config.train.seed));
  return placed(GPT(config.model), config, device);
}

void RunContext::init_model() {
  model = pgolf::init_model(config, device);
  if (group->active()) {
    std::vector<torch::Tensor> weights;
    for (auto& p : model->parameters()) weights.push_back(p.detach());
    group->broadcast(weights);
  }
}

void RunContext::load_model(StateDict weights) {
  GPT loaded(config.model);
  load_weights(loaded, std::move(weights));
  model = placed(loaded, config, device);
}

int64_t RunContext::val_batch_seqs_per_rank() const {
  const int64_t world = group->world_size();
  return val_batch_seqs(config.eval.val_batch_size, world, config.train.resolved_grad_accum(world),
                        config.train.train_seq_len);
}

ValResult RunContext::validate(ValOptions options, bool alone) const {
  options.seq_len = config.train.train_seq_len;
  options.batch_seqs = val_batch_seqs_per_rank();
  options.rank = alone ? 0 : group->rank();
  options.world_size = alone ? 1 : group->world_size();
  GPT m = model;
  ValResult r = evaluate_val(m, val_tokens, luts, options);
  all_reduce_sums(r, alone ? nullptr : group.get());
  return r;
}

StoredModel read_artifact_model(const std::filesystem::path& artifact) {
  const LoadedArtifact loaded = read_artifact(artifact);
  StoredModel stored;
  stored.weights = dequantize(loaded.model);
  stored.config = loaded.config;
  stored.label = roundtrip_label(loaded.info.quant_format, loaded.info.codec);
  stored.non_compliant = loaded.config.value("non_compliant", "");
  return stored;
}

StoredModel read_weights_file(const std::filesystem::path& safetensors) {
  SafetensorsMetadata metadata;
  StoredModel stored;
  stored.weights = read_safetensors(safetensors, &metadata);
  if (metadata.count("pgolf_config"))
    stored.config = nlohmann::json::parse(metadata.at("pgolf_config"));
  stored.label = "final_weights";
  return stored;
}

}  // namespace pgolf
