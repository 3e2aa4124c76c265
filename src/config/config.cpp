#include "config/config.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "config/options.h"

namespace pgolf {

void ModelConfig::validate() const {
  PGOLF_CHECK(vocab_size > 0 && vocab_size <= 65536,
              "VOCAB_SIZE={} must be in [1, 65536] (shards store uint16 tokens)", vocab_size);
  PGOLF_CHECK(num_layers > 0, "NUM_LAYERS={} must be positive", num_layers);
  PGOLF_CHECK(model_dim > 0, "MODEL_DIM={} must be positive", model_dim);
  PGOLF_CHECK(num_heads > 0, "NUM_HEADS={} must be positive", num_heads);
  PGOLF_CHECK(num_kv_heads > 0, "NUM_KV_HEADS={} must be positive", num_kv_heads);
  PGOLF_CHECK(model_dim % num_heads == 0, "MODEL_DIM={} must be divisible by NUM_HEADS={}",
              model_dim, num_heads);
  PGOLF_CHECK(num_heads % num_kv_heads == 0, "NUM_HEADS={} must be divisible by NUM_KV_HEADS={}",
              num_heads, num_kv_heads);
  PGOLF_CHECK(head_dim() % 2 == 0, "head_dim = MODEL_DIM/NUM_HEADS = {} must be even for RoPE",
              head_dim());
  PGOLF_CHECK(mlp_mult > 0, "MLP_MULT={} must be positive", mlp_mult);
  PGOLF_CHECK(tied_embed_init_std > 0, "TIED_EMBED_INIT_STD={} must be positive",
              tied_embed_init_std);
  PGOLF_CHECK(logit_softcap > 0, "LOGIT_SOFTCAP={} must be positive", logit_softcap);
  PGOLF_CHECK(rope_base > 1, "ROPE_BASE={} must be > 1", rope_base);
  PGOLF_CHECK(mlp_hidden() > 0, "MLP_MULT={} gives an empty MLP", mlp_mult);

  PGOLF_CHECK(unique_layers >= 0, "UNIQUE_LAYERS={} must be >= 0", unique_layers);
  PGOLF_CHECK(
      unique_layers == 0 || unique_layers >= num_layers || weight_layout == WeightLayout::kCores,
      "UNIQUE_LAYERS={} shares weights between layers, which needs WEIGHT_LAYOUT=cores",
      unique_layers);
  PGOLF_CHECK(weight_layout != WeightLayout::kBanks || init_scheme != InitScheme::kBaseline,
              "WEIGHT_LAYOUT=banks is #1406's layout and needs its INIT_SCHEME "
              "(orthogonal_unscaled or orthogonal)");
  PGOLF_CHECK(bigram_vocab_size == 0 || bigram_vocab_size >= 2,
              "BIGRAM_VOCAB_SIZE={} must be 0 (off) or >= 2", bigram_vocab_size);
  PGOLF_CHECK(bigram_dim > 0, "BIGRAM_DIM={} must be positive", bigram_dim);
  PGOLF_CHECK(!trigram || bigram_vocab_size > 0,
              "TRIGRAM=1 hashes into the bigram table: set BIGRAM_VOCAB_SIZE too");
  PGOLF_CHECK(rope_dims >= 0 && rope_dims <= head_dim() && rope_dims % 2 == 0,
              "ROPE_DIMS={} must be even and in [0, head_dim={}]", rope_dims, head_dim());
  PGOLF_CHECK(effective_rope_dims() > 2 || rope_ntk_ref_len == 0,
              "NTK scaling needs more than 2 rotary dims (ROPE_DIMS={})", rope_dims);
  PGOLF_CHECK(rope_ntk_ref_len >= 0, "ROPE_NTK_REF_LEN={} must be >= 0", rope_ntk_ref_len);
  PGOLF_CHECK(xsa_last_n >= 0, "XSA_LAST_N={} must be >= 0", xsa_last_n);
  PGOLF_CHECK(ve_dim > 0, "VE_DIM={} must be positive", ve_dim);
  PGOLF_CHECK(leaky_slope >= 0, "LEAKY_SLOPE={} must be >= 0", leaky_slope);
  PGOLF_CHECK(num_loops >= 0, "NUM_LOOPS={} must be >= 0", num_loops);
  if (num_loops > 0) {
    PGOLF_CHECK(loop_start >= 0 && loop_start <= loop_end && loop_end < num_layers,
                "LOOP_START={}..LOOP_END={} must be a range of blocks inside NUM_LAYERS={}",
                loop_start, loop_end, num_layers);
    PGOLF_CHECK(recur_layers.empty(), "NUM_LOOPS and RECUR_LAYERS are two recurrences: pick one");
  }
  PGOLF_CHECK(parallel_start_layer >= 0 && parallel_start_layer < num_layers,
              "PARALLEL_START_LAYER={} must be a block index below NUM_LAYERS={} (0: off)",
              parallel_start_layer, num_layers);
  PGOLF_CHECK(parallel_start_layer == 0 || parallel_start_layer >= num_encoder_layers(),
              "PARALLEL_START_LAYER={} is an encoder block; the lanes start in the decoder (>= {})",
              parallel_start_layer, num_encoder_layers());
  PGOLF_CHECK(parallel_start_layer == 0 || num_loops == 0 || parallel_start_layer > loop_end,
              "PARALLEL_START_LAYER={} must come after the loop (LOOP_END={})",
              parallel_start_layer, loop_end);
  const bool gated = smear_gate_enabled || sparse_attn_gate_enabled;
  PGOLF_CHECK(!gated || (gate_window > 0 && gate_window <= model_dim),
              "GATE_WINDOW={} must be in [1, MODEL_DIM={}]", gate_window, model_dim);
  PGOLF_CHECK(
      !(smear_gate && smear_gate_enabled),
      "SMEAR_GATE (#1406's) and SMEAR_GATE_ENABLED (#1855's) are two smear gates: pick one");
  PGOLF_CHECK(!(gated_attention && sparse_attn_gate_enabled),
              "GATED_ATTENTION and SPARSE_ATTN_GATE_ENABLED are exclusive output gates");
  PGOLF_CHECK(sparse_attn_gate_init_std >= 0, "SPARSE_ATTN_GATE_INIT_STD={} must be >= 0",
              sparse_attn_gate_init_std);
  PGOLF_CHECK(max_doc_len >= 0, "MAX_DOC_LEN={} must be >= 0", max_doc_len);
  PGOLF_CHECK(!rope_yarn || rope_ntk_ref_len == 0,
              "ROPE_YARN and ROPE_NTK_REF_LEN are one rescaling rule: set one");
  PGOLF_CHECK(!rope_yarn || (rope_train_seq_len > 0 && effective_rope_dims() > 2),
              "ROPE_YARN needs ROPE_TRAIN_SEQ_LEN > 0 and more than 2 rotary dims");
  for (int64_t layer : recur_layer_list()) {
    PGOLF_CHECK(layer >= 0 && layer < num_layers, "RECUR_LAYERS names layer {}, but NUM_LAYERS={}",
                layer, num_layers);
  }
  for (int64_t layer : ve_layer_list()) {
    PGOLF_CHECK(layer >= 0 && layer < num_layers, "VE_LAYERS names layer {}, but NUM_LAYERS={}",
                layer, num_layers);
  }
}

int64_t ModelConfig::num_cores() const {
  const bool shared =
      weight_layout == WeightLayout::kCores && unique_layers > 0 && unique_layers < num_layers;
  return shared ? unique_layers : num_layers;
}

bool ModelConfig::xsa_on_core(int64_t core) const {
  return xsa_last_n > 0 && core >= std::max<int64_t>(0, num_cores() - xsa_last_n);
}

namespace {

// "4,5" -> {4, 5}; blanks are skipped, as the scripts' split(",") + strip().
std::vector<int64_t> parse_int_list(const std::string& text, const char* env) {
  std::vector<int64_t> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(start, end - start);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty()) {
      size_t used = 0;
      int64_t value = 0;
      try {
        value = std::stoll(item, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      PGOLF_CHECK(used == item.size(), "{}='{}': '{}' is not an integer", env, text, item);
      out.push_back(value);
    }
    start = end + 1;
  }
  return out;
}

}  // namespace

std::vector<int64_t> ModelConfig::recur_layer_list() const {
  return parse_int_list(recur_layers, "RECUR_LAYERS");
}

std::vector<int64_t> ModelConfig::ve_layer_list() const {
  return ve_enabled ? parse_int_list(ve_layers, "VE_LAYERS") : std::vector<int64_t>{};
}

std::vector<int64_t> ModelConfig::passes(bool looping) const {
  std::vector<int64_t> out;
  if (looping && num_loops > 0) {
    for (int64_t l = 0; l < loop_start; ++l) out.push_back(l);
    for (int64_t k = 0; k <= num_loops; ++k) {
      for (int64_t l = loop_start; l <= loop_end; ++l) out.push_back(l);
    }
    for (int64_t l = loop_end + 1; l < num_layers; ++l) out.push_back(l);
    return out;
  }
  for (int64_t l = 0; l < num_layers; ++l) out.push_back(l);
  for (int64_t l : recur_layer_list()) out.push_back(l);
  return out;
}

// Without looping the split is num_layers / 2 (recur_layers come after the
// decoder, outside the U-Net); with it, half of the looped schedule.
std::vector<int64_t> ModelConfig::encoder_passes(bool looping) const {
  const auto all = passes(looping);
  const bool looped = looping && num_loops > 0;
  const auto n = looped ? static_cast<int64_t>(all.size()) / 2 : num_encoder_layers();
  return {all.begin(), all.begin() + n};
}

std::vector<int64_t> ModelConfig::decoder_passes(bool looping) const {
  const auto n_enc = static_cast<int64_t>(encoder_passes(looping).size());
  const bool looped = looping && num_loops > 0;
  const int64_t end = looped ? static_cast<int64_t>(passes(true).size()) : num_layers;
  const auto all = passes(looping);
  return {all.begin() + n_enc, all.begin() + end};
}

int64_t ModelConfig::num_skip_weights() const {
  const bool looped = num_loops > 0;
  return static_cast<int64_t>(
      std::min(encoder_passes(looped).size(), decoder_passes(looped).size()));
}

std::string DataConfig::train_glob() const {
  return train_files.empty() ? data_path + "/fineweb_train_*.bin" : train_files;
}

std::string DataConfig::val_glob() const {
  return val_files.empty() ? data_path + "/fineweb_val_*.bin" : val_files;
}

void DataConfig::validate() const {
  PGOLF_CHECK(!data_path.empty() || (!train_files.empty() && !val_files.empty()),
              "DATA_PATH is empty and TRAIN_FILES/VAL_FILES are not both set");
  PGOLF_CHECK(!tokenizer_path.empty(), "TOKENIZER_PATH is empty");
}

int64_t TrainConfig::resolved_grad_accum(int64_t world_size) const {
  if (grad_accum_steps > 0) return grad_accum_steps;
  PGOLF_CHECK(8 % world_size == 0,
              "WORLD_SIZE={} must divide 8 so grad_accum_steps stays integral "
              "(or set GRAD_ACCUM_STEPS)",
              world_size);
  return 8 / world_size;
}

double TrainConfig::training_frac(int64_t step, double elapsed_ms) const {
  if (max_wallclock_seconds <= 0) {
    return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(iterations, 1));
  }
  return elapsed_ms / std::max(budget_ms(), 1e-9);
}

void TrainConfig::validate() const {
  PGOLF_CHECK(iterations >= 0, "ITERATIONS={} must be >= 0", iterations);
  PGOLF_CHECK(warmdown_iters >= 0, "WARMDOWN_ITERS={} must be >= 0", warmdown_iters);
  PGOLF_CHECK(warmup_steps >= 0, "WARMUP_STEPS={} must be >= 0", warmup_steps);
  PGOLF_CHECK(train_seq_len > 0, "TRAIN_SEQ_LEN={} must be positive", train_seq_len);
  PGOLF_CHECK(train_batch_tokens > 0, "TRAIN_BATCH_TOKENS={} must be positive", train_batch_tokens);
  PGOLF_CHECK(grad_accum_steps >= 0, "GRAD_ACCUM_STEPS={} must be >= 0", grad_accum_steps);
  const int64_t accum = grad_accum_steps > 0 ? grad_accum_steps : 8;
  PGOLF_CHECK(train_batch_tokens / accum >= train_seq_len &&
                  (train_batch_tokens / accum) % train_seq_len == 0,
              "TRAIN_BATCH_TOKENS={} / grad_accum_steps={} must be a positive multiple of "
              "TRAIN_SEQ_LEN={}",
              train_batch_tokens, accum, train_seq_len);
  PGOLF_CHECK(max_wallclock_seconds >= 0, "MAX_WALLCLOCK_SECONDS={} must be >= 0",
              max_wallclock_seconds);
  PGOLF_CHECK(val_loss_every >= 0, "VAL_LOSS_EVERY={} must be >= 0", val_loss_every);
  PGOLF_CHECK(train_log_every >= 0, "TRAIN_LOG_EVERY={} must be >= 0", train_log_every);
  for (const auto& [name, lr] : {std::pair{"EMBED_LR", embed_lr},
                                 {"HEAD_LR", head_lr},
                                 {"TIED_EMBED_LR", tied_embed_lr},
                                 {"MATRIX_LR", matrix_lr},
                                 {"SCALAR_LR", scalar_lr}}) {
    PGOLF_CHECK(lr >= 0, "{}={} must be >= 0", name, lr);
  }
  PGOLF_CHECK(muon_momentum >= 0 && muon_momentum < 1, "MUON_MOMENTUM={} must be in [0, 1)",
              muon_momentum);
  PGOLF_CHECK(muon_momentum_warmup_start >= 0 && muon_momentum_warmup_start < 1,
              "MUON_MOMENTUM_WARMUP_START={} must be in [0, 1)", muon_momentum_warmup_start);
  PGOLF_CHECK(muon_momentum_warmup_steps >= 0, "MUON_MOMENTUM_WARMUP_STEPS={} must be >= 0",
              muon_momentum_warmup_steps);
  PGOLF_CHECK(muon_backend_steps > 0, "MUON_BACKEND_STEPS={} must be positive", muon_backend_steps);
  PGOLF_CHECK(beta1 >= 0 && beta1 < 1, "BETA1={} must be in [0, 1)", beta1);
  PGOLF_CHECK(beta2 >= 0 && beta2 < 1, "BETA2={} must be in [0, 1)", beta2);
  PGOLF_CHECK(adam_eps > 0, "ADAM_EPS={} must be positive", adam_eps);
  PGOLF_CHECK(grad_clip_norm >= 0, "GRAD_CLIP_NORM={} must be >= 0", grad_clip_norm);
  PGOLF_CHECK(muon_wd >= 0 && adam_wd >= 0, "MUON_WD={} and ADAM_WD={} must be >= 0", muon_wd,
              adam_wd);
  PGOLF_CHECK(ema_decay > 0 && ema_decay < 1, "EMA_DECAY={} must be in (0, 1)", ema_decay);
  PGOLF_CHECK(swa_every > 0, "SWA_EVERY={} must be positive", swa_every);
  PGOLF_CHECK(swa_start_frac >= 0 && swa_start_frac <= 1, "SWA_START_FRAC={} must be in [0, 1]",
              swa_start_frac);
  PGOLF_CHECK(qat_bits == 5 || qat_bits == 6, "QAT_BITS={} must be 5 or 6", qat_bits);
  PGOLF_CHECK(qat_threshold >= 0 && qat_threshold <= 1, "QAT_THRESHOLD={} must be in [0, 1]",
              qat_threshold);
  PGOLF_CHECK(checkpoint_every >= 0, "CHECKPOINT_EVERY={} must be >= 0", checkpoint_every);
  PGOLF_CHECK(warmdown_frac >= 0 && warmdown_frac <= 1, "WARMDOWN_FRAC={} must be in [0, 1]",
              warmdown_frac);
  PGOLF_CHECK(min_lr >= 0 && min_lr <= 1, "MIN_LR={} must be in [0, 1]", min_lr);
  PGOLF_CHECK(enable_looping_at >= 0 && enable_looping_at <= 1,
              "ENABLE_LOOPING_AT={} must be in [0, 1]", enable_looping_at);
  PGOLF_CHECK(gptq_reserve_seconds >= 0 &&
                  (max_wallclock_seconds == 0 || gptq_reserve_seconds < max_wallclock_seconds),
              "GPTQ_RESERVE_SECONDS={} must be >= 0 and below MAX_WALLCLOCK_SECONDS={}",
              gptq_reserve_seconds, max_wallclock_seconds);
}

void EvalConfig::validate() const {
  PGOLF_CHECK(val_batch_size > 0, "VAL_BATCH_SIZE={} must be positive", val_batch_size);
  PGOLF_CHECK(val_max_tokens >= 0, "VAL_MAX_TOKENS={} must be >= 0", val_max_tokens);
  PGOLF_CHECK(eval_stride >= 0, "EVAL_STRIDE={} must be >= 0", eval_stride);
  PGOLF_CHECK(eval_seq_len >= 0, "EVAL_SEQ_LEN={} must be >= 0", eval_seq_len);
  PGOLF_CHECK(eval_batch_seqs > 0, "EVAL_BATCH_SEQS={} must be positive", eval_batch_seqs);
}

void TttConfig::validate() const {
  PGOLF_CHECK(lr > 0, "TTT_LR={} must be positive", lr);
  PGOLF_CHECK(epochs >= 0, "TTT_EPOCHS={} must be >= 0", epochs);
  PGOLF_CHECK(momentum >= 0 && momentum < 1, "TTT_MOMENTUM={} must be in [0, 1)", momentum);
  PGOLF_CHECK(freeze_blocks >= 0, "TTT_FREEZE_BLOCKS={} must be >= 0", freeze_blocks);
  PGOLF_CHECK(batch_seqs > 0, "TTT_BATCH_SEQS={} must be positive", batch_seqs);
  PGOLF_CHECK(grad_clip >= 0, "TTT_GRAD_CLIP={} must be >= 0", grad_clip);
  PGOLF_CHECK(chunk_tokens > 0, "TTT_CHUNK_TOKENS={} must be positive", chunk_tokens);
  PGOLF_CHECK(ns_steps > 0, "TTT_NS_STEPS={} must be positive", ns_steps);
  PGOLF_CHECK(!entropy_adapt || mode == TttMode::kMuon,
              "TTT_ENTROPY_ADAPT=1 belongs to TTT_MODE=muon (#1406's 03-28 TTT)");
  PGOLF_CHECK(block_lr_min > 0 && block_lr_min <= 1, "TTT_BLOCK_LR_MIN={} must be in (0, 1]",
              block_lr_min);
  PGOLF_CHECK(proj_lr_mult > 0 && fc_lr_mult > 0,
              "TTT_PROJ_LR_MULT and TTT_FC_LR_MULT must be positive");
  PGOLF_CHECK(max_seconds >= 0, "TTT_MAX_SECONDS={} must be >= 0", max_seconds);
  PGOLF_CHECK(val_adapt == ValAdapt::kNone || allow_non_compliant,
              "VAL_ADAPT={} trains on the validation tokens before they are scored, which the "
              "challenge forbids; set ALLOW_NON_COMPLIANT=1 to run it anyway (its results are "
              "marked non_compliant)",
              name_of(val_adapt));
  PGOLF_CHECK(val_adapt_lr > 0 && val_adapt_epochs > 0,
              "VAL_ADAPT_LR and VAL_ADAPT_EPOCHS must be positive");
  if (mode == TttMode::kPhased) phased.validate();
}

void PhasedTttConfig::validate() const {
  PGOLF_CHECK(lora_rank > 0 && lora_alpha > 0,
              "TTT_LORA_RANK={} and TTT_LORA_ALPHA={} must be "
              "positive",
              lora_rank, lora_alpha);
  PGOLF_CHECK(lora_lr > 0 && global_lr > 0, "TTT_LORA_LR={} and GLOBAL_TTT_LR={} must be positive",
              lora_lr, global_lr);
  PGOLF_CHECK(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1,
              "TTT_BETA1={} and TTT_BETA2={} must be in [0, 1)", beta1, beta2);
  PGOLF_CHECK(weight_decay >= 0, "TTT_WEIGHT_DECAY={} must be >= 0", weight_decay);
  PGOLF_CHECK(batch_docs > 0 && chunk_size > 0 && grad_steps > 0,
              "TTT_BATCH_SIZE={}, TTT_CHUNK_SIZE={} and TTT_GRAD_STEPS={} must be positive",
              batch_docs, chunk_size, grad_steps);
  PGOLF_CHECK(eval_seq_len >= chunk_size,
              "TTT_EVAL_SEQ_LEN={} must hold at least one chunk (TTT_CHUNK_SIZE={})", eval_seq_len,
              chunk_size);
  PGOLF_CHECK(prefix_docs >= 0 && num_phases > 0,
              "PHASED_TTT_PREFIX_DOCS={} must be >= 0 and PHASED_TTT_NUM_PHASES={} positive",
              prefix_docs, num_phases);
  PGOLF_CHECK(global_momentum >= 0 && global_momentum < 1,
              "GLOBAL_TTT_MOMENTUM={} must be in [0, 1)", global_momentum);
  PGOLF_CHECK(global_epochs >= 0 && global_chunk_tokens > 0 && global_batch_seqs > 0,
              "GLOBAL_TTT_EPOCHS={} must be >= 0, GLOBAL_TTT_CHUNK_TOKENS={} and "
              "GLOBAL_TTT_BATCH_SEQS={} positive",
              global_epochs, global_chunk_tokens, global_batch_seqs);
  PGOLF_CHECK(global_grad_clip >= 0, "GLOBAL_TTT_GRAD_CLIP={} must be >= 0", global_grad_clip);
}

double QuantConfig::resolved_prune_frac() const {
  if (prune_frac >= 0) return prune_frac;
  const bool entry_prunes =
      format == SchemeId::kPr461 || format == SchemeId::kPr456 || format == SchemeId::kPr562;
  return entry_prunes ? 0.03 : 0.0;
}

void QuantConfig::validate() const {
  PGOLF_CHECK(level >= 0 && level <= 22, "COMPRESS_LEVEL={} must be in [0, 22]", level);
  PGOLF_CHECK(prune_frac < 1, "PRUNE_FRAC={} must be < 1 (negative: the scheme's default)",
              prune_frac);
  PGOLF_CHECK(gptq_calib_batches > 0, "GPTQ_CALIB_BATCHES={} must be positive", gptq_calib_batches);
  PGOLF_CHECK(!gptq || format == SchemeId::kPr1406 || format == SchemeId::kPr562 ||
                  format == SchemeId::kPr1855,
              "GPTQ=1 needs QUANT_FORMAT pr1406, pr562 or pr1855 (the entries with full GPTQ), "
              "not '{}'",
              name_of(format));
  PGOLF_CHECK(matrix_bits >= 5 && matrix_bits <= 7 && embed_bits >= 5 && embed_bits <= 7,
              "MATRIX_BITS={} and EMBED_BITS={} must be 5, 6 or 7", matrix_bits, embed_bits);
  for (const double k :
       {matrix_clip_sigmas, mlp_clip_sigmas, attn_clip_sigmas, embed_clip_sigmas}) {
    PGOLF_CHECK(k > 0, "the *_CLIP_SIGMAS must be positive, got {}", k);
  }
  PGOLF_CHECK(lqer_rank > 0 && lqer_top_k >= 0, "LQER_RANK={} must be > 0 and LQER_TOP_K={} >= 0",
              lqer_rank, lqer_top_k);
  PGOLF_CHECK(lqer_factor_bits >= 2 && lqer_factor_bits <= 8,
              "LQER_FACTOR_BITS={} must be in [2, 8]", lqer_factor_bits);
  PGOLF_CHECK(lqer_asym_group > 0, "LQER_ASYM_GROUP={} must be positive", lqer_asym_group);
  PGOLF_CHECK(!(gptq_lite || all_int5) || format == SchemeId::kPr461 || format == SchemeId::kPr456,
              "GPTQ_LITE and ALL_INT5 are options of QUANT_FORMAT pr461 / pr456, not '{}'",
              name_of(format));
}

void RuntimeConfig::validate() const {
  PGOLF_CHECK(threads >= 0, "PGOLF_THREADS={} must be >= 0", threads);
}

void Config::validate() const {
  model.validate();
  data.validate();
  train.validate();
  eval.validate();
  ttt.validate();
  quant.validate();
  runtime.validate();
  PGOLF_CHECK(train.train_seq_len > 0 && eval.val_batch_size >= train.train_seq_len,
              "VAL_BATCH_SIZE={} must hold at least one sequence of TRAIN_SEQ_LEN={}",
              eval.val_batch_size, train.train_seq_len);
}

torch::ScalarType resolve_compute_dtype(ComputeDtype dtype, torch::Device device) {
  if (dtype == ComputeDtype::kFp32) return torch::kFloat;
  if (dtype == ComputeDtype::kBf16) return torch::kBFloat16;
  return device.is_cuda() ? torch::kBFloat16 : torch::kFloat;
}

std::string DeviceSpec::str() const {
  if (kind == DeviceKind::kCpu) return "cpu";
  return index < 0 ? "cuda" : "cuda:" + std::to_string(index);
}

DeviceSpec DeviceSpec::parse(std::string_view text, std::string_view what) {
  DeviceSpec spec;
  const size_t colon = text.find(':');
  spec.kind = parse_name<DeviceKind>(text.substr(0, colon), what);
  if (colon == std::string_view::npos) return spec;
  const std::string_view index = text.substr(colon + 1);
  const bool digits = !index.empty() && index.size() <= 4 &&
                      index.find_first_not_of("0123456789") == std::string_view::npos;
  PGOLF_CHECK(spec.is_cuda() && digits, "{}: '{}' must be cpu, cuda or cuda:N", what, text);
  spec.index = std::stoi(std::string(index));
  return spec;
}

nlohmann::json to_json(const Config& config) {
  Config copy = config;  // config_options binds mutable references
  nlohmann::json json;
  json["preset"] = config.preset;
  for (const Option& opt : config_options(copy)) json[opt.group][opt.key] = opt.get();
  return json;
}

nlohmann::json stored_config_json(const Config& config) {
  nlohmann::json json = to_json(config);
  json.erase("process");
  json.erase("tools");
  return json;
}

Config config_from_json(const nlohmann::json& json) {
  PGOLF_CHECK(json.is_object(), "config JSON must be an object");
  Config config;
  if (json.contains("preset")) config.preset = json.at("preset").get<std::string>();
  for (const Option& opt : config_options(config)) {
    if (json.contains(opt.group) && json.at(opt.group).contains(opt.key)) {
      const auto& value = json.at(opt.group).at(opt.key);
      opt.set(value.is_string() ? value.get<std::string>() : value.dump());
    }
  }
  config.validate();
  return config;
}

std::string describe(const Config& config) {
  Config copy = config;
  std::string out = fmt::format("config: preset={}\n", config.preset);
  std::string group;
  for (const Option& opt : config_options(copy)) {
    if (opt.group != group) {
      group = opt.group;
      out += fmt::format("  [{}]\n", group);
    }
    out += fmt::format("    {:<28} {}\n", opt.env, opt.get());
  }
  return out;
}

}  // namespace pgolf
