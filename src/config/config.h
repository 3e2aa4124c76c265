// The run configuration: one plain struct per concern, gathered in Config.
//
// Values come, in order of precedence (last wins):
//   1. a named preset (config/presets.h),
//   2. the challenge's environment variables (NUM_LAYERS, MODEL_DIM, ...),
//   3. command-line flags (--num-layers, --model-dim, ...).
// Steps 2 and 3 go through one table (config/options.h), so every field has
// exactly one flag and one environment name. Config::validate() is called once,
// after all overrides, and throws pgolf::Error for every impossible value.
#pragma once

#include <algorithm>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "config/enums.h"

namespace pgolf {

// The GPT (spec model-and-training §1-3). Defaults are the baseline's; every
// technique of the entries is a switch that is off by default, and the
// presets (config/presets.h) turn on what each entry used.
struct ModelConfig {
  int64_t vocab_size = 1024;
  int64_t num_layers = 9;  // logical layers (U-Net over these)
  int64_t model_dim = 512;
  int64_t num_heads = 8;
  int64_t num_kv_heads = 4;
  double mlp_mult = 2;  // hidden = int(mlp_mult * model_dim), as the scripts
  bool tie_embeddings = true;
  double tied_embed_init_std = 0.005;
  double logit_softcap = 30.0;
  double rope_base = 10000.0;
  double qk_gain_init = 1.5;

  WeightLayout weight_layout = WeightLayout::kBlocks;  // matrix storage and names (config/enums.h)
  // cores layout: number of weight cores; logical layer l runs core l mod n
  // (0 or >= num_layers: one core per layer). #461: 10 cores for 11 layers.
  int64_t unique_layers = 0;
  // Extra passes after the last layer, reusing these blocks' weights and
  // per-layer state (#1406: "4,5" -> passes 0..10,4,5). Empty: none.
  std::string recur_layers;

  InitScheme init_scheme = InitScheme::kBaseline;  // (§3.11)
  bool smear_gate = false;                         // previous-token blend of the embedding (§3.3)
  int64_t bigram_vocab_size = 0;                   // BigramHash buckets (0: off) (§3.2)
  int64_t bigram_dim = 128;
  bool trigram = false;          // add the trigram hash into the same table
  int64_t rope_dims = 0;         // rotary dims per head (0: all) (§3.6.1)
  int64_t rope_ntk_ref_len = 0;  // NTK-aware base when T > this (0: off; the scripts: 1024)
  bool ln_scale = false;         // scale normalised block inputs by 1/sqrt(layer+1)
  int64_t xsa_last_n = 0;        // exclusive self-attention on the last N cores (§3.6.2)
  bool ve_enabled = false;       // shared value embedding (§3.6.3)
  int64_t ve_dim = 128;
  std::string ve_layers = "9,10";
  bool value_residual = false;  // mix layer 0's values into later layers
  ValueResidualMode value_residual_mode = ValueResidualMode::kLambda;
  bool gated_attention = false;  // per-head sigmoid output gates (§3.6.5)
  double leaky_slope = 0.0;      // MLP activation leaky_relu(slope)^2; 0 = relu^2

  // #1855 (docs/entries/pr1855.md §3), each off by default.
  bool skip_gates_enabled = false;   // skips as lerp(w*skip, x, sigmoid(gate)) (§3.6)
  int64_t parallel_start_layer = 0;  // two residual lanes from this decoder block (0: off) (§3.7)
  ParallelFinalLane parallel_final_lane = ParallelFinalLane::kMean;
  // Depth recurrence by loop (§3.1): once looping is on, blocks
  // loop_start..loop_end run num_loops more times in place.
  int64_t num_loops = 0;
  int64_t loop_start = 3;
  int64_t loop_end = 5;
  bool smear_gate_enabled = false;        // BOS-masked smear of the raw embedding (§3.2)
  int64_t gate_window = 12;               // input channels of that smear gate and the sparse gate
  bool sparse_attn_gate_enabled = false;  // sigmoid(scale * W u[:gate_window]) per head (§3.4)
  double sparse_attn_gate_scale = 1.0;
  double sparse_attn_gate_init_std = 0.0;  // 0: zero init
  // Attention restarts at every BOS and every max_doc_len tokens inside a
  // document (the record's cu_seqlens, §3.10); 0: plain causal rows.
  int64_t max_doc_len = 0;
  // The record's ROPE_YARN: windows longer than rope_train_seq_len use the
  // rescaled base (the NTK rule above with that reference length).
  bool rope_yarn = false;
  int64_t rope_train_seq_len = 2048;

  int64_t head_dim() const { return model_dim / num_heads; }
  int64_t kv_dim() const { return num_kv_heads * head_dim(); }
  int64_t mlp_hidden() const { return static_cast<int64_t>(mlp_mult * model_dim); }
  int64_t num_encoder_layers() const { return num_layers / 2; }
  int64_t num_decoder_layers() const { return num_layers - num_encoder_layers(); }
  // Sized for the looped schedule when there is one (#1855).
  int64_t num_skip_weights() const;
  int64_t effective_rope_dims() const { return rope_dims > 0 ? rope_dims : head_dim(); }
  int64_t effective_ntk_ref_len() const {
    return rope_yarn ? rope_train_seq_len : rope_ntk_ref_len;
  }
  // Weight sets: cores (cores layout) or blocks (the other layouts).
  int64_t num_cores() const;
  int64_t core_of_layer(int64_t layer) const { return layer % num_cores(); }
  bool xsa_on_core(int64_t core) const;
  std::vector<int64_t> recur_layer_list() const;
  std::vector<int64_t> ve_layer_list() const;
  // Logical layers in execution order: 0..num_layers-1, then recur_layers.
  // With looping (num_loops > 0 and `looping`): 0..loop_end, loop_start..loop_end
  // num_loops more times, then the rest.
  std::vector<int64_t> passes(bool looping = false) const;
  // The U-Net split of passes(looping): the first half pushes skips, the
  // second pops them (#1855's encoder_indices / decoder_indices).
  std::vector<int64_t> encoder_passes(bool looping) const;
  std::vector<int64_t> decoder_passes(bool looping) const;
  void validate() const;
};

// Where the shards and the tokenizer are.
struct DataConfig {
  std::string data_path = "./data/datasets/fineweb10B_sp1024";
  std::string tokenizer_path = "./data/tokenizers/fineweb_1024_bpe.model";
  // Globs; empty means data_path + "/fineweb_{train,val}_*.bin".
  std::string train_files;
  std::string val_files;

  std::string train_glob() const;
  std::string val_glob() const;
  void validate() const;
};

// The training recipe (spec §4; baseline defaults from train_gpt.py).
struct TrainConfig {
  int64_t seed = 1337;
  int64_t iterations = 20000;
  int64_t warmdown_iters = 1200;
  int64_t warmup_steps = 20;  // compile warm-up: run, then restore the initial state
  int64_t train_batch_tokens = 524288;
  int64_t train_seq_len = 1024;
  int64_t grad_accum_steps = 0;  // 0: 8 / world_size, as the reference
  double max_wallclock_seconds = 600.0;
  int64_t val_loss_every = 1000;
  int64_t train_log_every = 200;

  double embed_lr = 0.6;
  double head_lr = 0.008;
  double tied_embed_lr = 0.05;
  double matrix_lr = 0.04;
  double scalar_lr = 0.04;
  double muon_momentum = 0.95;
  int64_t muon_backend_steps = 5;
  double muon_momentum_warmup_start = 0.85;
  int64_t muon_momentum_warmup_steps = 500;
  bool muon_ns_bf16 = true;  // Newton-Schulz in bf16, as the reference
  // ...computed on the CPU with fp32 kernels that round every op to bf16
  // (train/muon.h): the same numbers as PyTorch's bf16 ops, without the CPU's
  // slow bf16 GEMM. No effect on CUDA.
  bool muon_ns_bf16_via_fp32 = true;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double adam_eps = 1e-8;
  double grad_clip_norm = 0.0;

  // The entries' recipe (spec §4.4-4.12); all off in the baseline.
  double muon_wd = 0.0;      // decoupled: W <- W (1 - lr*wd) before the Muon update
  double adam_wd = 0.0;      // AdamW decay of the tok and scalar groups
  bool muon_eq_r = false;    // MuonEq-R: row-normalise the update before Newton-Schulz
  bool ema_enabled = false;  // fp32 shadow e <- d e + (1-d) w after every step
  double ema_decay = 0.997;
  bool swa_enabled = false;  // average the weights every SWA_EVERY steps once s < SWA_START_FRAC
  int64_t swa_every = 50;
  double swa_start_frac = 0.2;
  bool swa_apply = true;  // #1406 collects SWA but exports the EMA: SWA_APPLY=0
  bool late_qat = false;  // fake-quantise matrices (STE) once s < QAT_THRESHOLD
  double qat_threshold = 0.1;
  int64_t qat_bits = 6;           // 6 (codes -32..31) or 5 (ALL_INT5 of #461: -16..15)
  bool qat_all_matrices = false;  // also the banks (#1406 fake-quantises only its CastedLinears)
  bool qat_match_export = true;   // the export's per-row scale rule (0: the scripts' 1/q floor)

  // #1855's recipe (docs/entries/pr1855.md §4).
  TrainLoader train_loader = TrainLoader::kSequences;
  NsCoefficients muon_ns_coefficients = NsCoefficients::kQuintic;
  bool muon_row_normalize = false;  // the record's name for MUON_EQ_R (either turns it on)
  bool muon_bf16_momentum = false;  // bf16 gradient and momentum buffer, as the record
  double warmdown_frac = 0;         // > 0: warm down over this fraction of the run
  double min_lr = 0;                // floor of that warm-down's multiplier
  double enable_looping_at = 0.35;  // training fraction that switches NUM_LOOPS on
  double gptq_reserve_seconds = 0;  // taken off MAX_WALLCLOCK_SECONDS for the export
  double embed_wd = -1;             // AdamW decay of the token embedding (< 0: ADAM_WD)
  int64_t checkpoint_every = 0;     // write a checkpoint every N steps (0: only at the end)

  int64_t resolved_grad_accum(int64_t world_size) const;
  // The training clock's budget: MAX_WALLCLOCK_SECONDS less the export's
  // reserve, in ms (0: no cap).
  double budget_ms() const {
    return max_wallclock_seconds > 0 ? 1000.0 * (max_wallclock_seconds - gptq_reserve_seconds) : 0;
  }
  // The run's progress in [0, 1]: elapsed / budget, or step / ITERATIONS
  // without a cap (what WARMDOWN_FRAC and ENABLE_LOOPING_AT read).
  double training_frac(int64_t step, double elapsed_ms) const;
  void validate() const;
};

// Validation (spec quantize-eval-ttt §1-2): the plain split into sequences,
// and sliding windows after the export.
struct EvalConfig {
  int64_t val_batch_size = 524288;
  int64_t val_max_tokens = 0;    // 0: the whole validation split; >0: only its first N tokens
  int64_t eval_stride = 64;      // sliding-window stride after the export (0: no sliding eval)
  int64_t eval_seq_len = 0;      // window length (0: TRAIN_SEQ_LEN)
  int64_t eval_batch_seqs = 32;  // windows per forward on each rank
  // Windows longer than TRAIN_SEQ_LEN use the NTK-aware RoPE base (§2.5),
  // with TRAIN_SEQ_LEN as reference length unless the model has its own.
  bool eval_ntk = true;
  // Count the tail like the references do (its last `stride` targets scored
  // L/stride times, §2.2); the default scores every target exactly once.
  bool eval_reference_tail = false;

  int64_t resolved_seq_len(int64_t train_seq_len) const {
    return eval_seq_len > 0 ? eval_seq_len : train_seq_len;
  }
  void validate() const;
};

// Test-time training (spec quantize-eval-ttt §5). TTT_MODE runs the chunked
// score-first scheme (§5.1): each chunk is scored before any update that uses
// its tokens, and the last chunk is never trained on. VAL_ADAPT runs one of
// the two entries' modes that train on the validation tokens *before* scoring
// them (§5.6-5.7); they break the challenge's rule and need
// ALLOW_NON_COMPLIANT=1, and every output they produce is marked.
// TTT_MODE=phased: #1855's evaluation (docs/entries/pr1855.md §6.3,
// eval/phased_ttt.h). Per-document LoRA adapters trained score-first on
// chunks of each document, and global SGD phases on the documents already
// scored. Defaults: the record's run (its log), not its script's defaults.
struct PhasedTttConfig {
  int64_t lora_rank = 80;
  double lora_alpha = 144;   // output scale alpha / rank
  bool warm_start_a = true;  // a document's A starts where its slot's last one ended
  bool k_lora = true, mlp_lora = true, o_lora = true;  // q, v and the head always
  double lora_lr = 1e-4;                               // AdamW
  double beta1 = 0, beta2 = 0.99;
  double weight_decay = 0.5;
  int64_t batch_docs = 64;      // documents adapted side by side (TTT_BATCH_SIZE)
  int64_t chunk_size = 48;      // tokens scored, then trained on, per step
  int64_t eval_seq_len = 2048;  // longest context of a scored token
  int64_t grad_steps = 1;       // AdamW steps per chunk
  int64_t prefix_docs = 2500;   // documents the global phases train on, in all
  int64_t num_phases = 3;
  double global_lr = 1e-3;  // SGD, cosine over the phase's chunks
  double global_momentum = 0.9;
  int64_t global_epochs = 1;
  int64_t global_chunk_tokens = 32768;
  int64_t global_batch_seqs = 32;  // sequences per step per rank
  double global_grad_clip = 1.0;

  void validate() const;
};

struct TttConfig {
  // sgd (#461) | adamw (#456, #562) | muon (#1406 03-28) | phased (#1855)
  TttMode mode = TttMode::kNone;
  double lr = 0.002;
  int64_t epochs = 3;            // passes over each chunk
  double momentum = 0.9;         // sgd
  int64_t freeze_blocks = 0;     // blocks.{b<N}. and the cores they use stay fixed
  int64_t batch_seqs = 32;       // training sequences per step (per rank)
  double grad_clip = 1.0;        // global grad-norm clip (0: off)
  int64_t chunk_tokens = 32768;  // chunk size C
  int64_t ns_steps = 3;          // muon: Newton-Schulz iterations
  bool entropy_adapt = false;    // muon (#1406 03-28): epochs from the chunk's scored NLL
  TttSchedule schedule = TttSchedule::kChunk;  // lr cosine: across chunks | steps | none
  double block_lr_min = 1.0;  // per-block LR from this (first block) to 1 (last); 1: off
  double proj_lr_mult = 1.0;  // #562's groups: attn.proj/mlp.proj/bigram.proj
  double fc_lr_mult = 1.0;    // #562's groups: mlp.fc
  double max_seconds = 0;     // stop adapting (keep scoring) after this long; 0: no cap
  // Non-compliant: none | prequant (#1406 dTTT before the export) |
  // postquant (#562: fine-tune the round-tripped model on the whole split).
  ValAdapt val_adapt = ValAdapt::kNone;
  double val_adapt_lr = 5e-4;
  int64_t val_adapt_epochs = 10;
  bool allow_non_compliant = false;
  PhasedTttConfig phased;  // TTT_MODE=phased

  bool enabled() const { return mode != TttMode::kNone; }
  void validate() const;
};

// Export: quantization scheme, pruning, calibration and compressor (spec
// quantize-eval-ttt §3-4, §6.1). The scheme names each entry's assignment of
// formats to tensors (quant/scheme.h).
struct QuantConfig {
  SchemeId format = SchemeId::kInt8Baseline;  // the scheme (quant/scheme.h)
  Compressor compressor = Compressor::kZlib;
  int64_t level = 0;            // 0: the codec's default (zlib 9, zstd 22, lzma 9)
  bool allow_oversize = false;  // exceeding 16,000,000 bytes is an error unless set
  CodeStorage code_storage = CodeStorage::kInt8Container;  // intN codes
  bool gptq_lite = false;  // #461/#456 GPTQ_LITE: per-row percentile clip search
  bool all_int5 = false;   // #461/#456 ALL_INT5: int5 for attention and bigram too
  // Magnitude pruning before quantization (§3.8): fraction of each large
  // matrix zeroed; < 0: the scheme's default (0.03 for pr461/pr456/pr562, else 0).
  double prune_frac = -1;
  bool gptq = false;                 // full Hessian GPTQ (§3.6) for the int5/int6 matrices
  int64_t gptq_calib_batches = 256;  // train: loader batches; selfgen: generated sequences
  CalibrationSource gptq_calib = CalibrationSource::kTrain;  // train: the loader continues
  // Selective ±1 pruning (§3.9) when the artifact is over this many bytes:
  // 0: the decimal cap minus the code bytes; < 0: never.
  int64_t target_bytes = 0;
  // QUANT_FORMAT=pr1855 (docs/entries/pr1855.md §7), the record's values:
  // SDClip GPTQ, row scale = k * std(row) / (2^(bits-1) - 1), k by role.
  int64_t matrix_bits = 6;  // attention and MLP matrices
  int64_t embed_bits = 7;   // the tied embedding, GPTQ'd too
  double matrix_clip_sigmas = 12.85;
  double mlp_clip_sigmas = 11.5;
  double attn_clip_sigmas = 13.0;
  double embed_clip_sigmas = 14.0;
  bool gated_attn_quant_gate = true;  // int8 per row for the attention gates
  // LQER: a low-rank fix of the LQER_TOP_K largest quantization errors.
  bool lqer_enabled = true;
  int64_t lqer_rank = 4;
  int64_t lqer_top_k = 3;
  int64_t lqer_factor_bits = 4;   // symmetric factors
  bool lqer_asym_enabled = true;  // A int2 per matrix, B int4 per group
  int64_t lqer_asym_group = 64;

  // prune_frac with the scheme's default resolved.
  double resolved_prune_frac() const;
  void validate() const;
};

// Where and how the process runs.
struct RuntimeConfig {
  DeviceSpec device;
  ComputeDtype dtype = ComputeDtype::kAuto;  // bf16 on CUDA, fp32 on the CPU
  int64_t threads = 0;                       // 0: all cores
  std::string run_dir = "runs";
  std::string run_id;  // empty: a timestamp
  bool quiet = false;
  void validate() const;
};

// How this process computes (switches for A/B runs; not part of the model,
// so artifacts do not store them).
struct ProcessConfig {
  // The fused CPU kernels (src/kernels) for fp32/fp64 CPU tensors; 0: the
  // plain ATen ops. Process-wide, applied when the run context is set up.
  bool fused_kernels = true;
  // Keep freed host memory mapped (glibc mallopt), so a step's activations
  // are not faulted in again every step; 0: the C library's defaults.
  bool retain_host_memory = true;
};

// Where pgolf finds what it downloads or compares against (the workflow's
// `data fetch`, `bench --compare`).
struct ToolsConfig {
  std::string python = "python3";  // a Python with torch, for the peer benchmark
  std::string peer_harness;        // empty: bench/peer_step.py beside the build folder
  std::string fetch_base_url = "https://huggingface.co";
  std::string fetch_repo_id = "willdepueoai/parameter-golf";
  std::string fetch_remote_root = "datasets";
};

struct Config {
  std::string preset = "baseline";
  ModelConfig model;
  DataConfig data;
  TrainConfig train;
  EvalConfig eval;
  TttConfig ttt;
  QuantConfig quant;
  RuntimeConfig runtime;
  ProcessConfig process;
  ToolsConfig tools;

  void validate() const;
};

// The defaults with the environment's values applied (commands without
// configuration flags: `data fetch`, `sweep`, `doctor`).
Config config_from_environment();

// JSON with one object per concern, keyed by the environment-variable names
// lower-cased (e.g. {"model": {"num_layers": 9, ...}, ...}).
nlohmann::json to_json(const Config& config);
Config config_from_json(const nlohmann::json& json);
// The config as weights carry it (artifact headers, safetensors metadata):
// to_json without the process and tools groups, which say how one process
// ran, not what the model is.
nlohmann::json stored_config_json(const Config& config);
// Human-readable two-column listing, printed at start-up.
std::string describe(const Config& config);

}  // namespace pgolf
