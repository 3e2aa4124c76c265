#include "config/options.h"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <type_traits>

#include "common/error.h"
#include "config/presets.h"

namespace pgolf {
namespace {

// Parsers for the three field types. Each accepts exactly what the reference's
// int(), float() and bool(int()) accept, and names the option on failure.
void parse_into(const std::string& env, const std::string& text, int64_t& out) {
  size_t used = 0;
  try {
    out = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  PGOLF_CHECK(used == text.size() && !text.empty(), "{}: '{}' is not an integer", env, text);
}

void parse_into(const std::string& env, const std::string& text, double& out) {
  size_t used = 0;
  try {
    out = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  PGOLF_CHECK(used == text.size() && !text.empty(), "{}: '{}' is not a number", env, text);
}

void parse_into(const std::string& env, const std::string& text, bool& out) {
  if (text == "1" || text == "true") {
    out = true;
  } else if (text == "0" || text == "false") {
    out = false;
  } else {
    fail("{}: '{}' is not a boolean (use 1/0)", env, text);
  }
}

void parse_into(const std::string&, const std::string& text, std::string& out) { out = text; }

template <typename E>
requires std::is_enum_v<E>
void parse_into(const std::string& env, const std::string& text, E& out) {
  out = parse_name<E>(text, env);
}

void parse_into(const std::string& env, const std::string& text, DeviceSpec& out) {
  out = DeviceSpec::parse(text, env);
}

std::string show(int64_t v) { return std::to_string(v); }
std::string show(double v) { return fmt::format("{}", v); }
std::string show(bool v) { return v ? "1" : "0"; }
std::string show(const std::string& v) { return v; }
std::string show(const DeviceSpec& v) { return v.str(); }
template <typename E>
requires std::is_enum_v<E> std::string show(E v) { return std::string(name_of(v)); }

// What a field's values look like, for help texts and the reference.
template <typename T>
std::string kind_of() {
  if constexpr (std::is_same_v<T, bool>) return "0 | 1";
  if constexpr (std::is_same_v<T, int64_t>) return "integer";
  if constexpr (std::is_same_v<T, double>) return "number";
  if constexpr (std::is_same_v<T, std::string>) return "text";
  if constexpr (std::is_same_v<T, DeviceSpec>) return "cpu | cuda | cuda:N";
  if constexpr (std::is_enum_v<T>) return name_choices<T>();
  return "";
}

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
  return s;
}

template <typename T>
Option make_option(const std::string& group, const std::string& key, T& field,
                   const std::string& help, const std::string& env = "") {
  Option opt;
  opt.group = group;
  opt.key = key;
  opt.env = env.empty() ? upper(key) : env;
  opt.help = help;
  opt.values = kind_of<T>();
  opt.is_switch = std::is_same_v<T, bool>;
  opt.set = [&field, name = opt.env](const std::string& text) { parse_into(name, text, field); };
  opt.get = [&field] { return show(field); };
  return opt;
}

}  // namespace

std::string Option::flag() const {
  std::string f = "--" + key;
  std::replace(f.begin(), f.end(), '_', '-');
  return f;
}

std::vector<Option> config_options(Config& c) {
  ModelConfig& m = c.model;
  DataConfig& d = c.data;
  TrainConfig& t = c.train;
  EvalConfig& e = c.eval;
  TttConfig& tt = c.ttt;
  QuantConfig& q = c.quant;
  RuntimeConfig& r = c.runtime;
  ProcessConfig& p = c.process;
  ToolsConfig& x = c.tools;
  return {
      make_option("model", "vocab_size", m.vocab_size,
                  "vocabulary size (must match the tokenizer)"),
      make_option("model", "num_layers", m.num_layers, "transformer blocks"),
      make_option("model", "model_dim", m.model_dim, "residual width"),
      make_option("model", "num_heads", m.num_heads, "query heads"),
      make_option("model", "num_kv_heads", m.num_kv_heads, "key/value heads (GQA)"),
      make_option("model", "mlp_mult", m.mlp_mult, "MLP hidden width = mlp_mult * model_dim"),
      make_option("model", "tie_embeddings", m.tie_embeddings, "tie the output head to tok_emb"),
      make_option("model", "tied_embed_init_std", m.tied_embed_init_std, "init std of tok_emb"),
      make_option("model", "logit_softcap", m.logit_softcap, "logits = c*tanh(z/c)"),
      make_option("model", "rope_base", m.rope_base, "RoPE base"),
      make_option("model", "qk_gain_init", m.qk_gain_init, "initial per-head q gain"),
      make_option(
          "model", "weight_layout", m.weight_layout,
          "matrix storage and names (blocks: baseline/#562, cores: #461/#456, banks: #1406)"),
      make_option("model", "unique_layers", m.unique_layers,
                  "cores layout: weight cores shared round-robin by the layers (0: one per layer)"),
      make_option("model", "recur_layers", m.recur_layers,
                  "layers run once more after the last one, e.g. 4,5 (empty: none)"),
      make_option("model", "init_scheme", m.init_scheme,
                  "weight init (orthogonal: .proj x 1/sqrt(2L); orthogonal_unscaled: #1406)"),
      make_option("model", "smear_gate", m.smear_gate, "blend each embedding with the previous"),
      make_option("model", "bigram_vocab_size", m.bigram_vocab_size, "BigramHash buckets (0: off)"),
      make_option("model", "bigram_dim", m.bigram_dim, "BigramHash table width"),
      make_option("model", "trigram", m.trigram, "also hash trigrams into the bigram table"),
      make_option("model", "rope_dims", m.rope_dims, "rotary dims per head (0: all)"),
      make_option("model", "rope_ntk_ref_len", m.rope_ntk_ref_len,
                  "NTK-scale the RoPE base for sequences longer than this (0: off)"),
      make_option("model", "ln_scale", m.ln_scale, "scale block inputs by 1/sqrt(layer+1)"),
      make_option("model", "xsa_last_n", m.xsa_last_n,
                  "exclusive self-attention on the last N cores/blocks"),
      make_option("model", "ve_enabled", m.ve_enabled, "shared value embedding"),
      make_option("model", "ve_dim", m.ve_dim, "value-embedding table width"),
      make_option("model", "ve_layers", m.ve_layers, "layers that add the value embedding"),
      make_option("model", "value_residual", m.value_residual,
                  "mix layer 0's values into later layers"),
      make_option("model", "value_residual_mode", m.value_residual_mode,
                  "lambda (#562: l0*v0 + l1*v), sigmoid (#1406: v + sigmoid(a)*v0)"),
      make_option("model", "gated_attention", m.gated_attention, "per-head sigmoid output gates"),
      make_option("model", "leaky_slope", m.leaky_slope,
                  "MLP activation leaky_relu(slope)^2 (0: relu^2)"),
      make_option("model", "skip_gates_enabled", m.skip_gates_enabled,
                  "#1855: sigmoid-gated U-Net skips, lerp(w*skip, x, sigmoid(g))"),
      make_option("model", "parallel_start_layer", m.parallel_start_layer,
                  "#1855: two residual lanes from this decoder block (0: off)"),
      make_option("model", "parallel_final_lane", m.parallel_final_lane,
                  "#1855: the lanes' merge before the final norm"),
      make_option("model", "num_loops", m.num_loops,
                  "#1855: extra passes of LOOP_START..LOOP_END once looping is on"),
      make_option("model", "loop_start", m.loop_start, "#1855: first block of the loop"),
      make_option("model", "loop_end", m.loop_end, "#1855: last block of the loop (inclusive)"),
      make_option("model", "smear_gate_enabled", m.smear_gate_enabled,
                  "#1855: BOS-masked smear of the raw embedding"),
      make_option("model", "gate_window", m.gate_window,
                  "#1855: input channels of the smear and sparse attention gates"),
      make_option("model", "sparse_attn_gate_enabled", m.sparse_attn_gate_enabled,
                  "#1855: per-head sigmoid gate on the attention output"),
      make_option("model", "sparse_attn_gate_scale", m.sparse_attn_gate_scale,
                  "#1855: multiplies the sparse gate's logit"),
      make_option("model", "sparse_attn_gate_init_std", m.sparse_attn_gate_init_std,
                  "#1855: sparse gate init std (0: zeros)"),
      make_option("model", "max_doc_len", m.max_doc_len,
                  "attention restarts at each BOS and every N tokens of a document (0: off)"),
      make_option("model", "rope_yarn", m.rope_yarn,
                  "#1855: rescaled RoPE base above ROPE_TRAIN_SEQ_LEN"),
      make_option("model", "rope_train_seq_len", m.rope_train_seq_len,
                  "#1855: ROPE_YARN's reference length"),

      make_option("data", "data_path", d.data_path, "folder with fineweb_{train,val}_*.bin"),
      make_option("data", "tokenizer_path", d.tokenizer_path, "SentencePiece .model"),
      make_option("data", "train_files", d.train_files,
                  "train shard glob (default: DATA_PATH/fineweb_train_*.bin)"),
      make_option("data", "val_files", d.val_files,
                  "val shard glob (default: DATA_PATH/fineweb_val_*.bin)"),

      make_option("train", "seed", t.seed, "random seed"),
      make_option("train", "iterations", t.iterations, "optimizer steps"),
      make_option("train", "warmdown_iters", t.warmdown_iters, "linear LR warmdown length (steps)"),
      make_option("train", "warmup_steps", t.warmup_steps, "warm-up steps run and then reverted"),
      make_option("train", "train_batch_tokens", t.train_batch_tokens, "tokens per optimizer step"),
      make_option("train", "train_seq_len", t.train_seq_len, "sequence length"),
      make_option("train", "grad_accum_steps", t.grad_accum_steps,
                  "micro-steps per step (0: 8/WORLD_SIZE)"),
      make_option("train", "max_wallclock_seconds", t.max_wallclock_seconds,
                  "training time cap (0: none)"),
      make_option("train", "val_loss_every", t.val_loss_every,
                  "validate every N steps (0: only at the end)"),
      make_option("train", "train_log_every", t.train_log_every, "log train loss every N steps"),
      make_option("train", "embed_lr", t.embed_lr, "Adam LR of an untied tok_emb"),
      make_option("train", "head_lr", t.head_lr, "Adam LR of an untied lm_head"),
      make_option("train", "tied_embed_lr", t.tied_embed_lr, "Adam LR of the tied tok_emb"),
      make_option("train", "matrix_lr", t.matrix_lr, "Muon LR of block matrices"),
      make_option("train", "scalar_lr", t.scalar_lr, "Adam LR of vectors and control tensors"),
      make_option("train", "muon_momentum", t.muon_momentum, "Muon momentum after warm-up"),
      make_option("train", "muon_backend_steps", t.muon_backend_steps, "Newton-Schulz iterations"),
      make_option("train", "muon_momentum_warmup_start", t.muon_momentum_warmup_start,
                  "Muon momentum at step 0"),
      make_option("train", "muon_momentum_warmup_steps", t.muon_momentum_warmup_steps,
                  "steps of Muon momentum warm-up"),
      make_option("train", "muon_ns_bf16", t.muon_ns_bf16,
                  "run Newton-Schulz in bf16 (reference) or fp32"),
      make_option("train", "muon_ns_bf16_via_fp32", t.muon_ns_bf16_via_fp32,
                  "CPU: bf16 Newton-Schulz computed by fp32 kernels rounding to bf16"),
      make_option("train", "beta1", t.beta1, "Adam beta1"),
      make_option("train", "beta2", t.beta2, "Adam beta2"),
      make_option("train", "adam_eps", t.adam_eps, "Adam epsilon"),
      make_option("train", "grad_clip_norm", t.grad_clip_norm,
                  "global gradient-norm clip (0: off)"),
      make_option("train", "muon_wd", t.muon_wd, "Muon decoupled weight decay"),
      make_option("train", "adam_wd", t.adam_wd, "AdamW weight decay (tok and scalar groups)"),
      make_option("train", "muon_eq_r", t.muon_eq_r,
                  "MuonEq-R: row-normalise before Newton-Schulz"),
      make_option("train", "ema_enabled", t.ema_enabled,
                  "keep an EMA of the weights and export it"),
      make_option("train", "ema_decay", t.ema_decay, "EMA decay per step"),
      make_option("train", "swa_enabled", t.swa_enabled,
                  "collect SWA checkpoints late in training"),
      make_option("train", "swa_every", t.swa_every, "SWA collection period (steps)"),
      make_option("train", "swa_start_frac", t.swa_start_frac,
                  "collect SWA once the LR multiplier is below this"),
      make_option("train", "swa_apply", t.swa_apply, "export the SWA average (else only collect)"),
      make_option("train", "late_qat", t.late_qat, "fake-quantise matrices once s < QAT_THRESHOLD"),
      make_option("train", "qat_threshold", t.qat_threshold, "LR multiplier that turns QAT on"),
      make_option("train", "qat_bits", t.qat_bits, "QAT grid: 6 or 5 bits"),
      make_option("train", "qat_all_matrices", t.qat_all_matrices,
                  "fake-quantise the banks too (not only CastedLinears)"),
      make_option("train", "qat_match_export", t.qat_match_export,
                  "QAT with the export's scale rule (0: the scripts' own, floor 1/q)"),
      make_option("train", "train_loader", t.train_loader,
                  "sequences (baseline) or #1855's document packing"),
      make_option("train", "muon_ns_coefficients", t.muon_ns_coefficients,
                  "Newton-Schulz: fixed quintic or #1855's Polar Express"),
      make_option("train", "muon_row_normalize", t.muon_row_normalize,
                  "#1855's name for MUON_EQ_R (either turns it on)"),
      make_option("train", "muon_bf16_momentum", t.muon_bf16_momentum,
                  "#1855: Muon's gradient and momentum in bf16"),
      make_option("train", "warmdown_frac", t.warmdown_frac,
                  "#1855: warm down over this fraction of the run (0: WARMDOWN_ITERS)"),
      make_option("train", "min_lr", t.min_lr, "#1855: floor of the warm-down multiplier"),
      make_option("train", "enable_looping_at", t.enable_looping_at,
                  "#1855: training fraction that turns NUM_LOOPS on"),
      make_option("train", "gptq_reserve_seconds", t.gptq_reserve_seconds,
                  "seconds of MAX_WALLCLOCK_SECONDS left for the export's calibration"),
      make_option("train", "embed_wd", t.embed_wd,
                  "AdamW decay of the token embedding (< 0: ADAM_WD)"),
      make_option("train", "checkpoint_every", t.checkpoint_every,
                  "checkpoint every N steps (0: at the end only)"),

      make_option("eval", "val_batch_size", e.val_batch_size,
                  "validation tokens per batch (all ranks)"),
      make_option("eval", "val_max_tokens", e.val_max_tokens,
                  "score only the first N val tokens (0: all)"),
      make_option("eval", "eval_stride", e.eval_stride,
                  "sliding-window stride after the export (0: no sliding eval)"),
      make_option("eval", "eval_seq_len", e.eval_seq_len, "window length (0: TRAIN_SEQ_LEN)"),
      make_option("eval", "eval_batch_seqs", e.eval_batch_seqs, "windows per forward per rank"),
      make_option("eval", "eval_ntk", e.eval_ntk,
                  "NTK-aware RoPE base for windows longer than TRAIN_SEQ_LEN"),
      make_option("eval", "eval_reference_tail", e.eval_reference_tail,
                  "count the tail targets L/stride times as the references do"),

      make_option("ttt", "ttt_mode", tt.mode,
                  "score-first TTT: sgd (#461), adamw (#456, #562), muon (#1406), phased "
                  "(#1855's per-document LoRA + global SGD phases)"),
      make_option("ttt", "ttt_lr", tt.lr, "TTT learning rate"),
      make_option("ttt", "ttt_epochs", tt.epochs, "TTT passes over each scored chunk"),
      make_option("ttt", "ttt_momentum", tt.momentum, "sgd momentum"),
      make_option("ttt", "ttt_freeze_blocks", tt.freeze_blocks, "first N blocks stay fixed"),
      make_option("ttt", "ttt_batch_seqs", tt.batch_seqs, "TTT sequences per step per rank"),
      make_option("ttt", "ttt_grad_clip", tt.grad_clip, "TTT grad-norm clip (0: off)"),
      make_option("ttt", "ttt_chunk_tokens", tt.chunk_tokens, "TTT chunk size in tokens"),
      make_option("ttt", "ttt_ns_steps", tt.ns_steps, "muon: Newton-Schulz iterations"),
      make_option("ttt", "ttt_entropy_adapt", tt.entropy_adapt,
                  "muon: epochs 4/3/2 by the chunk's scored entropy"),
      make_option("ttt", "ttt_schedule", tt.schedule,
                  "TTT lr cosine: across chunks, across steps, or constant"),
      make_option("ttt", "ttt_block_lr_min", tt.block_lr_min,
                  "per-block LR scale from this (block 0) to 1 (last block); 1: off"),
      make_option("ttt", "ttt_proj_lr_mult", tt.proj_lr_mult,
                  "LR multiplier of attn.proj, mlp.proj, bigram.proj (#562: 3)"),
      make_option("ttt", "ttt_fc_lr_mult", tt.fc_lr_mult, "LR multiplier of mlp.fc (#562: 0.5)"),
      make_option("ttt", "ttt_max_seconds", tt.max_seconds,
                  "stop adapting after this long, scoring continues; phased: once the time "
                  "left would not cover scoring the rest (0: no cap)"),
      make_option("ttt", "val_adapt", tt.val_adapt,
                  "NON-COMPLIANT training on the val split before scoring: prequant "
                  "(#1406 dTTT), postquant (#562)"),
      make_option("ttt", "val_adapt_lr", tt.val_adapt_lr, "VAL_ADAPT learning rate"),
      make_option("ttt", "val_adapt_epochs", tt.val_adapt_epochs, "VAL_ADAPT epochs"),
      make_option("ttt", "allow_non_compliant", tt.allow_non_compliant,
                  "allow VAL_ADAPT modes that break the challenge's rules"),
      make_option("ttt", "ttt_lora_rank", tt.phased.lora_rank, "phased: LoRA rank"),
      make_option("ttt", "ttt_lora_alpha", tt.phased.lora_alpha,
                  "phased: LoRA output scale alpha/rank"),
      make_option("ttt", "ttt_warm_start_a", tt.phased.warm_start_a,
                  "phased: a slot's next document keeps A (B restarts at 0)"),
      make_option("ttt", "ttt_k_lora", tt.phased.k_lora, "phased: LoRA on the keys"),
      make_option("ttt", "ttt_mlp_lora", tt.phased.mlp_lora, "phased: LoRA on the MLP"),
      make_option("ttt", "ttt_o_lora", tt.phased.o_lora, "phased: LoRA on the attention output"),
      make_option("ttt", "ttt_lora_lr", tt.phased.lora_lr, "phased: AdamW learning rate"),
      make_option("ttt", "ttt_beta1", tt.phased.beta1, "phased: AdamW beta1"),
      make_option("ttt", "ttt_beta2", tt.phased.beta2, "phased: AdamW beta2"),
      make_option("ttt", "ttt_weight_decay", tt.phased.weight_decay,
                  "phased: AdamW decoupled weight decay"),
      make_option("ttt", "ttt_batch_size", tt.phased.batch_docs,
                  "phased: documents adapted side by side"),
      make_option("ttt", "ttt_chunk_size", tt.phased.chunk_size,
                  "phased: tokens scored, then trained on, per step"),
      make_option("ttt", "ttt_eval_seq_len", tt.phased.eval_seq_len,
                  "phased: longest context of a scored token"),
      make_option("ttt", "ttt_grad_steps", tt.phased.grad_steps, "phased: AdamW steps per chunk"),
      make_option("ttt", "phased_ttt_prefix_docs", tt.phased.prefix_docs,
                  "phased: scored documents the global phases train on, in all"),
      make_option("ttt", "phased_ttt_num_phases", tt.phased.num_phases,
                  "phased: global SGD phases (equal shares of the prefix)"),
      make_option("ttt", "global_ttt_lr", tt.phased.global_lr, "phased: global SGD peak LR"),
      make_option("ttt", "global_ttt_momentum", tt.phased.global_momentum,
                  "phased: global SGD momentum"),
      make_option("ttt", "global_ttt_epochs", tt.phased.global_epochs,
                  "phased: passes over each global chunk"),
      make_option("ttt", "global_ttt_chunk_tokens", tt.phased.global_chunk_tokens,
                  "phased: global SGD chunk (one LR of the cosine)"),
      make_option("ttt", "global_ttt_batch_seqs", tt.phased.global_batch_seqs,
                  "phased: global SGD sequences per step per rank"),
      make_option("ttt", "global_ttt_grad_clip", tt.phased.global_grad_clip,
                  "phased: global SGD grad-norm clip (0: off)"),

      make_option("quant", "quant_format", q.format,
                  "export scheme: the baseline's int8 or an entry's"),
      make_option("quant", "compressor", q.compressor,
                  "artifact compressor (brotli: #1855's default; pergroup: its per-group lrzip; "
                  "auto: the smallest)"),
      make_option("quant", "compress_level", q.level, "compressor level (0: codec default)"),
      make_option("quant", "allow_oversize", q.allow_oversize,
                  "allow artifacts over 16,000,000 bytes"),
      make_option("quant", "code_storage", q.code_storage,
                  "int5/int6 codes: int8 (one byte each), packed (at their width)"),
      make_option("quant", "gptq_lite", q.gptq_lite, "pr461/pr456: per-row clip search"),
      make_option("quant", "all_int5", q.all_int5, "pr461/pr456: int5 for attention too"),
      make_option("quant", "prune_frac", q.prune_frac,
                  "magnitude pruning fraction before quantization (<0: the scheme's default)"),
      make_option("quant", "gptq", q.gptq, "full Hessian GPTQ (pr1406, pr562, pr1855)"),
      make_option("quant", "gptq_calib_batches", q.gptq_calib_batches,
                  "GPTQ calibration: training batches, or generated sequences for selfgen"),
      make_option("quant", "gptq_calib", q.gptq_calib,
                  "GPTQ calibration inputs: training batches, or sampled from the model"),
      make_option("quant", "target_bytes", q.target_bytes,
                  "selective +-1 pruning budget for the artifact (0: 16,000,000 - code; <0: off)"),
      make_option("quant", "matrix_bits", q.matrix_bits, "pr1855: code width of the matrices"),
      make_option("quant", "embed_bits", q.embed_bits, "pr1855: code width of tok_emb"),
      make_option("quant", "matrix_clip_sigmas", q.matrix_clip_sigmas,
                  "pr1855: row clip in standard deviations, other matrices"),
      make_option("quant", "mlp_clip_sigmas", q.mlp_clip_sigmas,
                  "pr1855: row clip in standard deviations, .mlp. matrices"),
      make_option("quant", "attn_clip_sigmas", q.attn_clip_sigmas,
                  "pr1855: row clip in standard deviations, .attn. matrices"),
      make_option("quant", "embed_clip_sigmas", q.embed_clip_sigmas,
                  "pr1855: row clip in standard deviations, tok_emb"),
      make_option("quant", "gated_attn_quant_gate", q.gated_attn_quant_gate,
                  "pr1855: int8 per row for attn_gate_w (0: fp16)"),
      make_option("quant", "lqer_enabled", q.lqer_enabled,
                  "pr1855: low-rank correction of the largest quantization errors"),
      make_option("quant", "lqer_rank", q.lqer_rank, "pr1855: LQER rank"),
      make_option("quant", "lqer_top_k", q.lqer_top_k, "pr1855: tensors LQER corrects"),
      make_option("quant", "lqer_factor_bits", q.lqer_factor_bits,
                  "pr1855: code width of symmetric LQER factors"),
      make_option("quant", "lqer_asym_enabled", q.lqer_asym_enabled,
                  "pr1855: LQER factors A int2 per matrix, B int4 per group"),
      make_option("quant", "lqer_asym_group", q.lqer_asym_group,
                  "pr1855: values per scale of the asymmetric B"),

      make_option("runtime", "device", r.device, "where to compute", "PGOLF_DEVICE"),
      make_option("runtime", "dtype", r.dtype, "compute dtype (auto: bf16 on CUDA, fp32 on CPU)",
                  "PGOLF_DTYPE"),
      make_option("runtime", "threads", r.threads,
                  "CPU threads per process (0: the cores shared among this machine's ranks)",
                  "PGOLF_THREADS"),
      make_option("runtime", "run_dir", r.run_dir, "parent folder of run folders", "PGOLF_RUN_DIR"),
      make_option("runtime", "run_id", r.run_id, "run folder name (default: timestamp)", "RUN_ID"),
      make_option("runtime", "quiet", r.quiet, "periodic log lines only, no live progress",
                  "PGOLF_QUIET"),

      make_option("process", "fused_kernels", p.fused_kernels,
                  "fused CPU kernels for fp32 CPU tensors (0: plain ATen ops)",
                  "PGOLF_FUSED_KERNELS"),
      make_option("process", "retain_host_memory", p.retain_host_memory,
                  "keep freed host memory mapped (0: the C library's defaults)",
                  "PGOLF_RETAIN_HOST_MEMORY"),

      make_option("tools", "python", x.python, "Python with torch for bench --compare",
                  "PGOLF_PYTHON"),
      make_option("tools", "peer_harness", x.peer_harness,
                  "bench --compare's harness (empty: bench/peer_step.py)", "PGOLF_PEER_HARNESS"),
      make_option("tools", "fetch_base_url", x.fetch_base_url, "data fetch: the hub's address",
                  "PGOLF_FETCH_BASE_URL"),
      make_option("tools", "fetch_repo_id", x.fetch_repo_id,
                  "data fetch: dataset repository when set (unset: the --variant's; this for "
                  "sp1024)",
                  "MATCHED_FINEWEB_REPO_ID"),
      make_option("tools", "fetch_remote_root", x.fetch_remote_root,
                  "data fetch: export folder in the repository",
                  "MATCHED_FINEWEB_REMOTE_ROOT_PREFIX"),
  };
}

const std::vector<ExternalVariable>& external_variables() {
  static const std::vector<ExternalVariable> variables = {
      {"RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT",
       "torchrun's description of this process in a multi-process run (dist/process_group.h; "
       "LOCAL_WORLD_SIZE also divides the cores among a machine's ranks); `--nproc N` sets "
       "them for each rank it starts"},
      {"GLOO_SOCKET_IFNAME", "network interfaces Gloo binds to (comma-separated), as in PyTorch"},
      {"PATH", "where a child process's program is looked up (dist/process.h)"},
      {"OMP_NUM_THREADS, MKL_NUM_THREADS",
       "read by OpenMP and MKL themselves; `pgolf doctor` shows them"},
      {"PGOLF_FAULT_CHECKPOINT_WRITE",
       "test seam: N makes the N-th checkpoint write die with SIGKILL half-way (the crash test)"},
  };
  return variables;
}

namespace {

// A Markdown table cell: a '|' in the text would end it.
std::string cell(const std::string& text) {
  std::string out;
  for (const char c : text) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

std::string options_reference() {
  Config defaults;
  std::vector<std::pair<std::string, Config>> presets;
  for (const auto& name : preset_names()) presets.emplace_back(name, preset(name));
  std::string out =
      "# Configuration reference\n\n"
      "Generated from the option table (`src/config/options.cpp`) by `pgolf config --reference`;\n"
      "a test fails when this file is stale. Values come from, in increasing precedence: the\n"
      "preset (`--preset`), the environment variable, the flag. `pgolf config --preset NAME`\n"
      "prints the resolved configuration; every run saves it as `config.json`.\n";
  std::string group;
  const auto table = config_options(defaults);
  for (size_t i = 0; i < table.size(); ++i) {
    const Option& opt = table[i];
    if (opt.group != group) {
      group = opt.group;
      out += fmt::format(
          "\n## {}\n\n| env | flag | values | default | presets | meaning |\n"
          "|---|---|---|---|---|---|\n",
          group);
    }
    std::string differs;
    for (auto& [name, config] : presets) {
      const std::string value = config_options(config)[i].get();
      if (value != opt.get())
        differs += fmt::format("{}{}: `{}`", differs.empty() ? "" : "; ", name, value);
    }
    const std::string shown = opt.get().empty() ? "" : "`" + opt.get() + "`";
    out += fmt::format("| {} | `{}` | {} | {} | {} | {} |\n", opt.env, opt.flag(), cell(opt.values),
                       cell(shown), cell(differs), cell(opt.help));
  }
  out += "\n## Read but not configured\n\n| variable | meaning |\n|---|---|\n";
  for (const ExternalVariable& v : external_variables()) {
    out += fmt::format("| {} | {} |\n", v.name, v.meaning);
  }
  return out;
}

Config config_from_environment() {
  Config config;
  apply_environment(config);
  config.validate();
  return config;
}

void apply_environment(Config& config) {
  for (const Option& opt : config_options(config)) {
    if (const char* value = std::getenv(opt.env.c_str())) opt.set(value);
  }
}

ConfigFlags::ConfigFlags(CLI::App& app, std::string default_preset)
    : app_(app), preset_(std::move(default_preset)) {
  std::string names;
  for (const auto& n : preset_names()) names += (names.empty() ? "" : ", ") + n;
  app.add_option("--preset", preset_, "configuration preset: " + names)->capture_default_str();
  Config scratch;
  const auto table = config_options(scratch);
  raw_.resize(table.size());
  for (size_t i = 0; i < table.size(); ++i) {
    keys_.push_back(table[i].key);
    envs_.push_back(table[i].env);
    flags_.push_back(table[i].flag());
    const std::string help = table[i].help + " [env " + table[i].env + "]";
    // A switch alone means 1 (`--quiet`); `--quiet=0` still turns it off.
    CLI::Option* option = table[i].is_switch ? app.add_flag(table[i].flag(), raw_[i], help)
                                             : app.add_option(table[i].flag(), raw_[i], help);
    option->group("Config (" + table[i].group + ")");
  }
}

Config ConfigFlags::resolve() const {
  Config config = preset(preset_);
  apply_environment(config);
  const auto table = config_options(config);
  for (size_t i = 0; i < table.size(); ++i) {
    if (app_.count(flags_[i]) > 0) table[i].set(raw_[i]);
  }
  config.validate();
  return config;
}

bool ConfigFlags::explicitly_set(const std::string& key) const {
  for (size_t i = 0; i < keys_.size(); ++i) {
    if (keys_[i] == key)
      return app_.count(flags_[i]) > 0 || std::getenv(envs_[i].c_str()) != nullptr;
  }
  fail("internal: unknown config key '{}'", key);
}

}  // namespace pgolf
