#include "config/presets.h"

#include "common/error.h"

namespace pgolf {
namespace {

// The official baseline train_gpt.py, as run in the challenge (its defaults).
Config baseline() {
  Config c;
  c.preset = "baseline";
  return c;
}

// The baseline recipe at a size that trains for 10 minutes on 2 CPU cores and
// still learns: same architecture and optimizers, narrower and shallower,
// shorter sequences, smaller batches, no compile warm-up, one micro-step.
Config cpu() {
  Config c = baseline();
  c.preset = "cpu";
  c.model.num_layers = 6;
  c.model.model_dim = 256;
  c.model.num_heads = 4;
  c.model.num_kv_heads = 2;
  c.train.train_seq_len = 256;
  // 4096-token steps: on 2 cores, ~1.1 s each, ~550 steps in 10 minutes. In
  // 90 s trials batch 2048/4096/8192 reached val_loss 4.75/4.80/5.37: at this
  // budget more steps beat bigger batches.
  c.train.train_batch_tokens = 4096;
  c.train.grad_accum_steps = 1;
  c.train.iterations = 100000;  // the wall-clock cap ends training
  c.train.max_wallclock_seconds = 600;
  c.train.warmdown_iters = 150;
  c.train.warmup_steps = 0;
  c.train.muon_momentum_warmup_steps = 100;
  // bf16 matmul through LibTorch on this CPU runs ~25x slower than fp32
  // (measured: Newton-Schulz on 256x512, 976 ms vs 38 ms), so Muon's
  // orthogonalisation runs in fp32 here; the update still rounds to bf16.
  c.train.muon_ns_bf16 = false;
  c.train.val_loss_every = 0;
  c.train.train_log_every = 25;
  c.eval.val_batch_size = 65536;
  return c;
}

// What the four entries share (spec model-and-training §6): 512-wide, 8/4
// heads, MLP 3x, SmearGate + BigramHash, orthogonal init, 786,432-token steps
// of 2048-token sequences, Muon momentum 0.92 -> 0.99 over 1500 steps,
// gradient clip 0.3.
Config entry_common() {
  Config c = baseline();
  c.model.mlp_mult = 3;
  c.model.init_scheme = InitScheme::kOrthogonal;
  c.model.smear_gate = true;
  c.model.bigram_dim = 128;
  c.train.train_batch_tokens = 786'432;
  c.train.train_seq_len = 2048;
  c.train.muon_momentum = 0.99;
  c.train.muon_momentum_warmup_start = 0.92;
  c.train.muon_momentum_warmup_steps = 1500;
  c.train.grad_clip_norm = 0.3;
  c.train.val_loss_every = 500;
  c.train.matrix_lr = 0.025;
  c.train.scalar_lr = 0.025;
  c.train.tied_embed_lr = 0.035;
  c.train.muon_wd = 0.04;
  c.train.swa_enabled = true;
  c.train.swa_every = 50;
  c.train.late_qat = true;
  c.quant.compressor = Compressor::kZstd;
  c.quant.prune_frac = 0.03;  // #461/#456/#562 (§3.8); #1406 sets 0
  return c;
}

// The 11-layer stack #1406 and #461 share: partial RoPE 16/64 with the
// scripts' NTK base, LN scale, XSA on the last four, VE128 on layers 9-10.
void eleven_layer_stack(Config& c) {
  c.model.num_layers = 11;
  c.model.rope_dims = 16;
  c.model.rope_ntk_ref_len = 1024;
  c.model.ln_scale = true;
  c.model.xsa_last_n = 4;
  c.model.ve_enabled = true;
  c.model.ve_dim = 128;
  c.model.ve_layers = "9,10";
}

// What #461 and #456 share: one weight core per layer slot (10 cores), the
// iteration-based schedule without a wall-clock cap, and their recipe.
Config cores_entry() {
  Config c = entry_common();
  c.model.weight_layout = WeightLayout::kCores;
  c.model.unique_layers = 10;
  c.train.seed = 42;
  c.train.iterations = 5200;
  c.train.warmdown_iters = 3000;
  c.train.max_wallclock_seconds = 0;
  c.train.adam_wd = 0.01;
  c.train.swa_start_frac = 0.2;
  c.train.qat_threshold = 0.1;
  c.eval.eval_batch_seqs = 64;
  return c;
}

// #1406 "11L Depth Recurrence + Discriminative Pre-Quant TTT" as run: 11
// blocks in banks, blocks 4 and 5 run again after block 10 (13 passes), QK
// gain 5, partial RoPE 16/64 with the scripts' NTK base, LN scale, XSA on
// blocks 7-10, BigramHash 1536, VE128 on layers 9-10, LeakyReLU(0.5)^2.
// 26,928,220 parameters.
Config pr1406() {
  Config c = entry_common();
  c.preset = "pr1406";
  eleven_layer_stack(c);
  c.model.weight_layout = WeightLayout::kBanks;
  c.model.recur_layers = "4,5";
  c.model.init_scheme = InitScheme::kOrthogonalUnscaled;
  c.model.qk_gain_init = 5.0;
  c.model.bigram_vocab_size = 1536;
  c.model.leaky_slope = 0.5;
  c.train.seed = 1337;
  c.train.iterations = 9000;
  c.train.warmdown_iters = 3500;
  c.train.max_wallclock_seconds = 599;
  c.train.val_loss_every = 4000;
  c.train.adam_wd = 0.04;
  // EMA always on and exported; SWA collected from s < 0.2 but never applied;
  // late QAT from s < 0.15 on its CastedLinears only (bigram.proj,
  // ve_shared.proj), never the banks. Its README's MuonEq-R is not in its
  // code: MUON_EQ_R stays off.
  c.train.ema_enabled = true;
  c.train.swa_start_frac = 0.2;
  c.train.swa_apply = false;
  c.train.qat_threshold = 0.15;
  // Export (§6.1): unbank, Hessians from 256 training batches after the
  // loop, full GPTQ int6, selective ±1 pruning against the cap, lzma 9.
  c.quant.format = SchemeId::kPr1406;
  c.quant.prune_frac = 0;
  c.quant.gptq = true;
  c.quant.gptq_calib = CalibrationSource::kTrain;
  c.quant.gptq_calib_batches = 256;
  c.quant.compressor = Compressor::kLzma;
  // Evaluation: sliding windows, stride 64, 32 per batch. Its final file's
  // dTTT trains on the whole validation split before scoring (§5.6):
  // VAL_ADAPT=prequant with ALLOW_NON_COMPLIANT=1 reproduces it. The legal
  // TTT of its 03-28 commit (§5.4) is the preset's: Newton-Schulz updates,
  // entropy-adaptive epochs, cosine across chunks.
  c.eval.eval_batch_seqs = 32;
  c.ttt.mode = TttMode::kMuon;
  c.ttt.lr = 0.002;
  c.ttt.epochs = 3;
  c.ttt.ns_steps = 3;
  c.ttt.entropy_adapt = true;
  c.ttt.batch_seqs = 32;
  c.ttt.val_adapt_lr = 5e-4;
  c.ttt.val_adapt_epochs = 10;
  return c;
}

// #461 "11L Depth Recurrence + High-Yield Legal TTT" as run: 11 logical
// layers over 10 shared cores (layer 10 reuses core 0), partial RoPE 16 with
// NTK, LN scale, XSA on cores 6-9, BigramHash 2048, VE128 on layers 9-10,
// ReLU^2; iteration-based schedule (no wall-clock cap). 24,634,452 parameters.
Config pr461() {
  Config c = cores_entry();
  c.preset = "pr461";
  eleven_layer_stack(c);
  c.model.bigram_vocab_size = 2048;
  c.quant.format = SchemeId::kPr461;  // int5 MLP, int6 attention + bigram, row max
  // Score-first TTT (§5.2): SGD momentum 0.9, 3 epochs per chunk, blocks 0-1
  // (and so cores 0-1) frozen; scoring batch 64 windows.
  c.ttt.mode = TttMode::kSgd;
  c.ttt.lr = 0.002;
  c.ttt.epochs = 3;
  c.ttt.momentum = 0.9;
  c.ttt.freeze_blocks = 2;
  c.ttt.batch_seqs = 32;
  return c;
}

// #456 "Depth Recurrence + Legal Score-First TTT (10L)" as run: the cores
// layout with one core per layer (recurrence infrastructure inactive), full
// RoPE, XSA on layers 7-9, BigramHash 10240, ReLU^2. 25,517,137 parameters.
Config pr456() {
  Config c = cores_entry();
  c.preset = "pr456";
  c.model.num_layers = 10;
  c.model.bigram_vocab_size = 10240;
  c.model.xsa_last_n = 3;
  c.quant.format = SchemeId::kPr456;
  // Score-first TTT (§5.3): one AdamW step per chunk, cosine across chunks;
  // stride 128, scoring batch 64 windows.
  c.eval.eval_stride = 128;
  c.ttt.mode = TttMode::kAdamW;
  c.ttt.lr = 5e-4;
  c.ttt.epochs = 1;
  c.ttt.batch_seqs = 16;
  return c;
}

// #562 "10L TTT 22ep AdamW Cosine + LeakyReLU(0.5)^2 + TrigramHash" as run
// (its run command is unpublished; spec §9): 10 blocks, value residual
// (lambda form) and gated attention on every layer (the parameter count
// proves it), XSA on 6-9, LN scale, partial RoPE 16 (low confidence),
// BigramHash 2048 + trigram, LeakyReLU(0.5)^2, LRs 0.02/0.03/0.02.
// 24,509,621 parameters.
Config pr562() {
  Config c = entry_common();
  c.preset = "pr562";
  c.model.num_layers = 10;
  c.model.bigram_vocab_size = 2048;
  c.model.trigram = true;
  c.model.rope_dims = 16;
  c.model.ln_scale = true;
  c.model.xsa_last_n = 4;
  c.model.value_residual = true;
  c.model.value_residual_mode = ValueResidualMode::kLambda;
  c.model.gated_attention = true;
  c.model.leaky_slope = 0.5;
  c.train.seed = 42;
  c.train.iterations = 20000;
  c.train.warmdown_iters = 3500;
  c.train.max_wallclock_seconds = 600;
  c.train.matrix_lr = 0.02;
  c.train.scalar_lr = 0.02;
  c.train.tied_embed_lr = 0.03;
  c.train.adam_wd = 0.04;  // its WEIGHT_DECAY
  c.train.swa_start_frac = 0.4;
  c.train.qat_threshold = 0.5;        // the run's value (code default 0.1)
  c.quant.format = SchemeId::kPr562;  // int5/int6 with the per-row clip search, no GPTQ
  // Its TTT fine-tunes on the whole validation split for 22 epochs before
  // scoring (§5.7): VAL_ADAPT=postquant with ALLOW_NON_COMPLIANT=1. The
  // preset's TTT applies its optimiser settings score-first instead: AdamW,
  // per-step cosine, proj x3 / fc x0.5 groups, 32 sequences, clip 1.0 (the
  // epochs per chunk are ours: #461's 3).
  c.eval.eval_batch_seqs = 32;
  c.ttt.mode = TttMode::kAdamW;
  c.ttt.lr = 5e-4;
  c.ttt.epochs = 3;
  c.ttt.schedule = TttSchedule::kStep;
  c.ttt.proj_lr_mult = 3.0;
  c.ttt.fc_lr_mult = 0.5;
  c.ttt.batch_seqs = 32;
  c.ttt.val_adapt_lr = 5e-4;
  c.ttt.val_adapt_epochs = 22;
  return c;
}

// #1406's techniques and recipe at the `cpu` preset's scale (6 layers of
// width 256, 256-token sequences, 4096-token steps, 10-minute cap): the
// recurrence re-runs the middle layers 2,3, VE on the last two layers, XSA on
// the last two, everything else as #1406.
Config pr1406_cpu() {
  Config c = pr1406();
  c = at_scale_of(c, cpu());
  c.preset = "pr1406-cpu";
  c.model.recur_layers = "2,3";
  c.model.ve_layers = "4,5";
  c.model.xsa_last_n = 2;
  c.quant.gptq_calib_batches = 64;  // 64 x 4,096 tokens: about a minute on 2 cores
  // #1406's EMA (0.997) averages over ~330 steps, 5 % of its ~7,000-step run;
  // a 10-minute CPU run has 200-350 steps, where 0.997 would export a model
  // still half made of its initial weights (measured: post-EMA val_bpb 3.18
  // against 2.38 for the raw weights after 217 steps). 0.95 keeps the
  // horizon a small share of the run.
  c.train.ema_decay = 0.95;
  return c;
}

// #1855 "SP8192 LQER SparseGate BOSSmearFix 9HpStack" as run: the
// `Hyperparameters:` block of its train_seed42.log (docs/entries/pr1855.md
// §1), not the script's defaults. 11 blocks x 512 in banks, MLP 4x with
// LeakyReLU(0.5)^2, XSA on all 11, partial RoPE 16/64 (no YaRN), LN scale, q
// gain 5, gated U-Net skips, two lanes from block 8 (mean), blocks 3-5 looped
// twice more from 35 % of the run, the sparse attention gate (scale 0.5) and
// the BOS-masked SmearGate; packed documents with attention cut at each BOS
// and every 2048 tokens. 35,945,671 parameters.
Config pr1855() {
  Config c = baseline();
  c.preset = "pr1855";
  ModelConfig& m = c.model;
  m.vocab_size = 8192;
  m.num_layers = 11;
  m.mlp_mult = 4;
  m.weight_layout = WeightLayout::kBanks;
  m.init_scheme = InitScheme::kOrthogonalAttentionFirst;
  m.qk_gain_init = 5.0;
  m.rope_dims = 16;
  m.ln_scale = true;
  m.xsa_last_n = 11;
  m.leaky_slope = 0.5;
  m.skip_gates_enabled = true;
  m.parallel_start_layer = 8;
  m.parallel_final_lane = ParallelFinalLane::kMean;
  m.num_loops = 2;
  m.loop_start = 3;
  m.loop_end = 5;
  m.smear_gate_enabled = true;
  m.gate_window = 12;
  m.sparse_attn_gate_enabled = true;
  m.sparse_attn_gate_scale = 0.5;
  m.max_doc_len = 2048;
  c.data.data_path = "./data/datasets/fineweb10B_sp8192_lossless_caps_caseops_v1_reserved";
  c.data.tokenizer_path =
      "./data/tokenizers/fineweb_8192_bpe_lossless_caps_caseops_v1_reserved.model";
  TrainConfig& t = c.train;
  t.seed = 42;
  t.iterations = 20000;
  t.train_batch_tokens = 786'432;
  t.train_seq_len = 2048;
  t.warmup_steps = 20;
  t.max_wallclock_seconds = 600;
  // The log's 0.5 s left its 4.7 s calibration outside the 600 s (training
  // stopped at 599.6 s): 5 s keep ours inside.
  t.gptq_reserve_seconds = 5;
  t.warmdown_frac = 0.85;
  t.min_lr = 0.1;
  t.val_loss_every = 0;
  t.train_log_every = 500;
  t.train_loader = TrainLoader::kDocuments;
  t.matrix_lr = 0.026;
  t.scalar_lr = 0.02;
  t.tied_embed_lr = 0.03;
  t.muon_momentum = 0.97;
  t.muon_momentum_warmup_start = 0.92;
  t.muon_momentum_warmup_steps = 1500;
  t.muon_ns_coefficients = NsCoefficients::kPolarExpress;
  t.muon_row_normalize = true;
  t.muon_bf16_momentum = true;
  t.muon_wd = 0.095;
  t.beta2 = 0.99;
  t.adam_wd = 0.02;
  t.embed_wd = 0.085;
  t.grad_clip_norm = 0.3;
  t.ema_enabled = true;
  t.ema_decay = 0.9965;
  t.enable_looping_at = 0.35;
  // The script validates only the plain split (no sliding windows): 2048-token
  // sequences in 524,288-token batches.
  c.eval.eval_seq_len = 2048;
  c.eval.eval_stride = 0;
  c.eval.val_batch_size = 524'288;
  // The record's export: SDClip GPTQ int6 matrices and int7 embedding on 16
  // calibration batches, int8 gates, LQER on the 3 worst tensors, and the
  // per-group compression the log's COMPRESSOR=pergroup names.
  c.quant.format = SchemeId::kPr1855;
  c.quant.prune_frac = 0;
  c.quant.gptq = true;
  c.quant.gptq_calib = CalibrationSource::kTrain;
  c.quant.gptq_calib_batches = 16;
  c.quant.compressor = Compressor::kPergroup;
  // The scored evaluation: phased LoRA TTT (§6.3) at the log's settings,
  // within the challenge's 600 s (the record took 508.8 s; a slower run stops
  // adapting in time to score the rest).
  c.ttt.mode = TttMode::kPhased;
  c.ttt.max_seconds = 600;
  return c;
}

// #1855's stack at a size that learns in 10 minutes on 2 CPU cores: the
// `cpu` preset's 6 x 256 (4/2 heads) with 256-token sequences and 4096-token
// steps, so the three presets compare at one scale; every #1855 technique
// kept, scaled to 6 blocks: block 1-2 looped (ENABLE_LOOPING_AT as the
// record), lanes from block 4, XSA on all; Newton-Schulz in fp32 (the CPU's
// bf16 GEMM is ~25x slower); EMA 0.95, as pr1406-cpu and for its reason.
Config pr1855_cpu() {
  Config c = pr1855();
  c = at_scale_of(c, cpu());
  c.preset = "pr1855-cpu";
  c.model.loop_start = 1;
  c.model.loop_end = 2;
  c.model.parallel_start_layer = 4;
  c.model.xsa_last_n = 6;
  c.model.max_doc_len = c.train.train_seq_len;
  c.train.warmdown_iters = 0;
  c.train.gptq_reserve_seconds = 40;  // its calibration took 32.5 s on 2 cores
  c.train.ema_decay = 0.95;
  c.train.muon_bf16_momentum = false;
  c.eval.eval_seq_len = 0;
  c.quant.gptq_calib_batches = 16;
  c.ttt.phased.eval_seq_len = c.train.train_seq_len;
  c.ttt.max_seconds = 0;  // 2 cores: no challenge clock
  return c;
}

struct Named {
  const char* name;
  Config (*make)();
};

constexpr Named kPresets[] = {
    {"baseline", baseline},     {"cpu", cpu},       {"pr1406", pr1406},
    {"pr461", pr461},           {"pr456", pr456},   {"pr562", pr562},
    {"pr1406-cpu", pr1406_cpu}, {"pr1855", pr1855}, {"pr1855-cpu", pr1855_cpu}};

}  // namespace

Config at_scale_of(Config entry, const Config& scale) {
  entry.model.num_layers = scale.model.num_layers;
  entry.model.model_dim = scale.model.model_dim;
  entry.model.num_heads = scale.model.num_heads;
  entry.model.num_kv_heads = scale.model.num_kv_heads;
  const TrainConfig& t = scale.train;
  entry.train.train_seq_len = t.train_seq_len;
  entry.train.train_batch_tokens = t.train_batch_tokens;
  entry.train.grad_accum_steps = t.grad_accum_steps;
  entry.train.iterations = t.iterations;
  entry.train.max_wallclock_seconds = t.max_wallclock_seconds;
  entry.train.warmdown_iters = t.warmdown_iters;
  entry.train.warmup_steps = t.warmup_steps;
  entry.train.muon_momentum_warmup_steps = t.muon_momentum_warmup_steps;
  entry.train.muon_ns_bf16 = t.muon_ns_bf16;
  entry.train.val_loss_every = t.val_loss_every;
  entry.train.train_log_every = t.train_log_every;
  entry.eval.val_batch_size = scale.eval.val_batch_size;
  return entry;
}

Config preset(const std::string& name) {
  for (const Named& p : kPresets) {
    if (name == p.name) return p.make();
  }
  std::string known;
  for (const Named& p : kPresets) known += (known.empty() ? "" : ", ") + std::string(p.name);
  fail("unknown preset '{}' (known: {})", name, known);
}

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const Named& p : kPresets) names.emplace_back(p.name);
  return names;
}

}  // namespace pgolf
