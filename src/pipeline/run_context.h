// RunContext: what every command that runs a model on the challenge's data
// sets up, built once and the same way for `pgolf train`, `pgolf eval`,
// `pgolf bench` and `pgolf generate`:
//
//   process    PGOLF_FUSED_KERNELS, PGOLF_RETAIN_HOST_MEMORY
//   device     --device, or this rank's own GPU under a launcher
//   threads    --threads (0: all cores), denormals flushed
//   group      the process group torchrun's environment describes (world 1 if none)
//   logs       lines to stdout from rank 0; with a run folder, train.log and metrics.jsonl
//   tokenizer  loaded, its vocabulary checked against VOCAB_SIZE
//   luts       the per-token byte tables val_bpb counts with
//   val        the validation stream (VAL_FILES, trimmed, VAL_MAX_TOKENS)
//   model      a freshly initialised GPT (SEED) or stored weights, on the
//              device, in the compute dtype
#pragma once

#include <torch/types.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/log.h"
#include "config/config.h"
#include "data/tokenizer.h"
#include "dist/process_group.h"
#include "eval/val_bpb.h"
#include "io/state_dict.h"
#include "model/gpt.h"

namespace pgolf {

struct RunContext {
  Config config;
  torch::Device device{torch::kCPU};
  std::shared_ptr<ProcessGroup> group;
  RunLog log;          // stdout, rank 0 only (+ train.log once open_run_logs)
  MetricsLog metrics;  // discards until open_run_logs
  std::optional<Tokenizer> tokenizer;
  ByteLuts luts;             // on `device`
  torch::Tensor val_tokens;  // CPU int64
  GPT model{nullptr};

  bool master() const { return group->master(); }

  // Device, threads and process group only.
  static RunContext open(const Config& config);
  // ... plus the tokenizer, byte tables and validation stream.
  static RunContext open_with_data(const Config& config);

  // The run folder's train.log and metrics.jsonl (appended: a resumed run keeps its lines).
  void open_run_logs(const std::filesystem::path& run_dir);
  // The tokenizer, the byte tables and the validation stream (open_with_data).
  void load_validation();
  // The tokenizer alone (e.g. for sampling), vocabulary checked.
  void load_tokenizer();
  // A new model initialised from SEED (drawn on the CPU, so every device and
  // every rank draws the same weights; broadcast from rank 0 all the same).
  void init_model();
  // A model holding `weights` (reference names; #1406's per-layer names are
  // rebanked for a banked model).
  void load_model(StateDict weights);

  // The plain validation of `model` over the whole stream at TRAIN_SEQ_LEN:
  // shared by every rank and reduced across them, or (`alone`) by this rank
  // by itself, as rank 0 does after training while the others wait.
  ValResult validate(ValOptions options = {}, bool alone = false) const;
  // The sequences per forward on each rank that VAL_BATCH_SIZE implies for
  // the whole group (the same when one rank validates alone).
  int64_t val_batch_seqs_per_rank() const;
};

// The process-wide switches (fused kernels, host memory), before any tensor
// of the run exists; RunContext::open applies them.
void apply_process_config(const ProcessConfig& process);

// A new model for `config`, initialised from SEED (drawn on the CPU, so
// every device draws the same weights), on `device`, in the compute dtype.
GPT init_model(const Config& config, torch::Device device);

// Weights stored by pgolf or another tool, with what they say about themselves.
struct StoredModel {
  StateDict weights;
  nlohmann::json config;      // pgolf's config of the run that made them (null if none)
  std::string label;          // log name: final_int8_zlib_roundtrip, final_weights, ...
  std::string non_compliant;  // the artifact's mark, if it carries one
};

// An artifact (.pgolf), dequantized, or a safetensors state dict.
StoredModel read_artifact_model(const std::filesystem::path& artifact);
StoredModel read_weights_file(const std::filesystem::path& safetensors);

}  // namespace pgolf
