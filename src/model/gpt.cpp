#include "model/gpt.h"

#include <ATen/Parallel.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/init.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>
#include <utility>

#include "common/error.h"
#include "common/fast_kernels.h"
#include "model/documents.h"
#include "model/layers.h"

namespace pgolf {

GPTImpl::GPTImpl(const ModelConfig& config)
    : config_(config),
      ve_layers_(config.ve_layer_list()),
      looping_(config.num_loops > 0),
      document_attention_(config.max_doc_len > 0) {
  config.validate();
  const int64_t D = config.model_dim, L = config.num_layers;
  const bool banks = config.weight_layout == WeightLayout::kBanks;
  const bool shared_cores = config.weight_layout == WeightLayout::kCores;
  // Construction order = the reference's, so a seeded CPU generator draws the
  // same initial weights; own parameters come first in the state dict anyway,
  // in registration order: #1855's script (the one with skip gates) registers
  // the skips after the banks, the older entries before.
  const auto register_skips = [&] {
    skip_weights = register_parameter("skip_weights", torch::ones({config.num_skip_weights(), D}));
    if (config.skip_gates_enabled) {
      skip_gates = register_parameter("skip_gates", torch::zeros({config.num_skip_weights(), D}));
    }
  };
  if (!config.skip_gates_enabled) register_skips();
  tok_emb = register_module("tok_emb", torch::nn::Embedding(config.vocab_size, D));
  if (config.bigram_vocab_size > 0) {
    bigram = register_module(
        "bigram", BigramHash(config.bigram_vocab_size, config.bigram_dim, D, config.trigram));
  }
  if (config.smear_gate) smear = register_module("smear", SmearGate(D));
  if (banks) {
    const int64_t F = config.mlp_hidden(), KV = config.kv_dim();
    qo_bank = register_parameter("qo_bank", torch::empty({2 * L, D, D}));
    kv_bank = register_parameter("kv_bank", torch::empty({2 * L, KV, D}));
    mlp_up_bank = register_parameter("mlp_up_bank", torch::empty({L, F, D}));
    mlp_down_bank = register_parameter("mlp_down_bank", torch::empty({L, D, F}));
  }
  if (config.skip_gates_enabled) register_skips();
  if (config.parallel_start_layer > 0) {
    parallel_post_lambdas = register_parameter("parallel_post_lambdas", torch::ones({L, 2, 2}));
    parallel_resid_lambdas = register_parameter("parallel_resid_lambdas", torch::full({L, 2}, 1.1));
  }
  if (config.smear_gate_enabled)
    smear_lambda = register_parameter("smear_lambda", torch::zeros({1}));
  if (shared_cores) {
    cores = register_module("cores", torch::nn::ModuleList());
    for (int64_t c = 0; c < config.num_cores(); ++c) {
      cores->push_back(LayerCore(config, config.xsa_on_core(c)));
    }
  }
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t l = 0; l < L; ++l) {
    blocks->push_back(Block(config, l, /*owns_core=*/!shared_cores, /*own_matrices=*/!banks,
                            config.xsa_on_core(l)));
  }
  // After the blocks, as the reference (its 12 uniform draws come here).
  if (config.smear_gate_enabled) {
    smear_gate =
        register_module("smear_gate", CastedLinear(config.gate_window, 1, /*zero_init=*/true));
  }
  if (!ve_layers_.empty()) {
    ve_shared = register_module("ve_shared",
                                ValueEmbedding(config.vocab_size, config.ve_dim, config.kv_dim()));
    ve_layer_scales = register_module("ve_layer_scales", torch::nn::ParameterList());
    // ParameterList keeps the tensor's own requires_grad flag.
    for (size_t k = 0; k < ve_layers_.size(); ++k) {
      ve_layer_scales->append(torch::ones({1}).requires_grad_());
    }
  }
  if (!config.tie_embeddings) {
    lm_head = register_module("lm_head", CastedLinear(D, config.vocab_size, /*zero_init=*/true));
  }
  init_weights();
  round_to_bf16_like_the_reference();
  if (shared_cores) halve_shared_core_gradients();
}

// ---------------------------------------------------------------------------
// Initialisation (spec §3.11)

namespace {

// MKL's threaded QR (orthogonal_) on the 2-core development machine runs ~30x
// slower than single-threaded (512x512: 0.49 s vs 0.017 s), so the init runs
// on one thread; the draws and results do not depend on the thread count.
class SingleThreaded {
 public:
  SingleThreaded() : saved_(at::get_num_threads()) { at::set_num_threads(1); }
  ~SingleThreaded() { at::set_num_threads(saved_); }
  SingleThreaded(const SingleThreaded&) = delete;
  SingleThreaded& operator=(const SingleThreaded&) = delete;

 private:
  int saved_;
};

}  // namespace

void GPTImpl::init_weights() {
  torch::NoGradGuard no_grad;
  SingleThreaded single_threaded;
  if (config_.tie_embeddings) tok_emb->weight.normal_(0.0, config_.tied_embed_init_std);
  if (config_.init_scheme == InitScheme::kBaseline) {
    for (auto& module : modules(/*include_self=*/false)) {
      if (auto* linear = module->as<CastedLinearImpl>(); linear && linear->zero_init) {
        linear->weight.zero_();
      }
    }
    return;
  }
  const int64_t L = config_.num_layers;
  if (qo_bank.defined()) {
    // #1406 and #1855: Q, K, V and MLP-up orthogonal; attention-out and
    // MLP-down zero (their 1/sqrt(2L) scaling multiplies zeros). Same draw
    // order as each script.
    const bool attention_first = config_.init_scheme == InitScheme::kOrthogonalAttentionFirst;
    auto init_mlp = [&](int64_t i) {
      torch::nn::init::orthogonal_(mlp_up_bank[i]);
      mlp_down_bank[i].zero_();
    };
    for (int64_t i = 0; i < L; ++i) {
      torch::nn::init::orthogonal_(qo_bank[i]);
      qo_bank[L + i].zero_();
      torch::nn::init::orthogonal_(kv_bank[i]);
      torch::nn::init::orthogonal_(kv_bank[L + i]);
      if (!attention_first) init_mlp(i);
    }
    if (attention_first) {
      for (int64_t i = 0; i < L; ++i) init_mlp(i);
    }
  }
  init_orthogonal_linears(/*scale_proj=*/config_.init_scheme == InitScheme::kOrthogonal);
}

// Every script's main() casts the fresh model to bf16 and its fp32 tensors
// back, so every initial value is bf16-representable; with the same draws
// this makes a seed give exactly the reference's starting weights.
void GPTImpl::round_to_bf16_like_the_reference() {
  torch::NoGradGuard no_grad;
  for (auto& p : parameters()) p.copy_(p.to(torch::kBFloat16));
}

// The entries' pass over every linear module in registration order: zero the
// marked output projections, make every matrix with both dims >= 64
// orthogonal, and (#461/#456/#562) scale the ".proj" ones by 1/sqrt(2L).
void GPTImpl::init_orthogonal_linears(bool scale_proj) {
  const double proj_scale = 1.0 / std::sqrt(2.0 * static_cast<double>(config_.num_layers));
  for (const auto& item : named_modules(/*name_prefix=*/"", /*include_self=*/false)) {
    torch::Tensor weight;
    bool zero_init = false;
    if (auto* casted = item.value()->as<CastedLinearImpl>()) {
      weight = casted->weight;
      zero_init = casted->zero_init;
    } else if (auto* linear = item.value()->as<torch::nn::LinearImpl>()) {
      weight = linear->weight;
    } else {
      continue;
    }
    if (zero_init) {
      weight.zero_();
    } else if (weight.size(0) >= 64 && weight.size(1) >= 64) {
      torch::nn::init::orthogonal_(weight);
      const auto& name = item.key();
      const bool is_proj = name.ends_with(".proj") || name.find(".proj.") != std::string::npos;
      if (scale_proj && is_proj) weight.mul_(proj_scale);
    }
  }
}

// A core serving n > 1 layers gets the mean of its uses' gradients, not the
// sum (#461's hook); applied before any clipping or averaging.
int64_t GPTImpl::set_rope_ntk_ref_len(int64_t len) {
  const int64_t previous = config_.rope_ntk_ref_len;
  for (const auto& module : modules(/*include_self=*/false)) {
    if (auto* attn = dynamic_cast<CausalSelfAttentionImpl*>(module.get())) {
      attn->rotary().set_ntk_ref_len(len);
    }
  }
  config_.rope_ntk_ref_len = len;
  return previous;
}

void GPTImpl::set_adapters(const LoraAdapters* adapters) {
  PGOLF_CHECK(!adapters || adapters->slots() ==
                               static_cast<int64_t>(config_.encoder_passes(looping_).size() +
                                                    config_.decoder_passes(looping_).size()),
              "LoRA adapters: {} slots for a model with another number of passes (looping {})",
              adapters ? adapters->slots() : 0, looping_);
  adapters_ = adapters;
}

void GPTImpl::halve_shared_core_gradients() {
  std::map<int64_t, int64_t> uses;
  for (int64_t l = 0; l < config_.num_layers; ++l) ++uses[config_.core_of_layer(l)];
  for (const auto& [core, n] : uses) {
    if (n <= 1) continue;
    const double scale = 1.0 / static_cast<double>(n);
    for (auto& p : cores[core]->parameters()) {
      p.register_hook([scale](const torch::Tensor& grad) { return grad * scale; });
    }
  }
}

// ---------------------------------------------------------------------------
// Layer wiring

void GPTImpl::set_qat(const FakeQuantSpec& spec, bool include_banks) {
  qat_ = spec;
  qat_banks_ = include_banks;
  for (auto& module : modules(/*include_self=*/false)) {
    if (auto* linear = module->as<CastedLinearImpl>()) linear->qat = spec;
  }
}

void GPTImpl::set_input_observer(InputObserver observer) {
  observer_ = std::move(observer);
  const InputObserver* p = observer_ ? &observer_ : nullptr;
  if (bigram && bigram->proj) {
    bigram->proj->observer = p;
    bigram->proj->weight_name = "bigram.proj.weight";
  }
  if (ve_shared && ve_shared->proj) {
    ve_shared->proj->observer = p;
    ve_shared->proj->weight_name = "ve_shared.proj.weight";
  }
}

LayerMatrices GPTImpl::layer_matrices(int64_t layer) {
  LayerMatrices w;
  if (qo_bank.defined()) {
    const int64_t L = config_.num_layers;
    w.wq = qo_bank[layer];
    w.wk = kv_bank[layer];
    w.wv = kv_bank[L + layer];
    w.wo = qo_bank[L + layer];
    w.w_up = mlp_up_bank[layer];
    w.w_down = mlp_down_bank[layer];
    if (qat_banks_ && qat_.active() && is_training()) {
      for (auto* t : {&w.wq, &w.wk, &w.wv, &w.wo, &w.w_up, &w.w_down}) *t = fake_quantize(*t, qat_);
    }
  } else {
    auto& a = attention(layer);
    auto& m = mlp(layer);
    w.wq = a.c_q->effective_weight();
    w.wk = a.c_k->effective_weight();
    w.wv = a.c_v->effective_weight();
    w.wo = a.proj->effective_weight();
    w.w_up = m.fc->effective_weight();
    w.w_down = m.proj->effective_weight();
  }
  if (observer_) {
    w.observer = &observer_;
    w.prefix = cores ? "cores." + std::to_string(config_.core_of_layer(layer)) + "."
                     : "blocks." + std::to_string(layer) + ".";
  }
  return w;
}

CausalSelfAttentionImpl& GPTImpl::attention(int64_t layer) {
  if (cores) return *cores[config_.core_of_layer(layer)]->as<LayerCoreImpl>()->attn;
  return *blocks[layer]->as<BlockImpl>()->attn;
}

MLPImpl& GPTImpl::mlp(int64_t layer) {
  if (cores) return *cores[config_.core_of_layer(layer)]->as<LayerCoreImpl>()->mlp;
  return *blocks[layer]->as<BlockImpl>()->mlp;
}

torch::Tensor GPTImpl::value_embedding_for(int64_t layer, const torch::Tensor& ve) {
  auto it = std::find(ve_layers_.begin(), ve_layers_.end(), layer);
  if (it == ve_layers_.end()) return {};
  return ve * ve_layer_scales[it - ve_layers_.begin()].to(ve.scalar_type());
}

// ---------------------------------------------------------------------------
// Forward

namespace {

// PARALLEL_FINAL_LANE: the two lanes become the one the final norm reads.
torch::Tensor merge_lanes(ParallelFinalLane rule, const torch::Tensor& lane0,
                          const torch::Tensor& lane1) {
  switch (rule) {
    case ParallelFinalLane::kMean:
      return 0.5 * (lane0 + lane1);
    case ParallelFinalLane::kAttn:
      return lane0;
    case ParallelFinalLane::kMlp:
      return lane1;
  }
  fail("invalid PARALLEL_FINAL_LANE value {}", static_cast<int>(rule));
}

}  // namespace

torch::Tensor GPTImpl::embed(const torch::Tensor& input_ids) {
  auto x = tok_emb(input_ids).to(compute_dtype_);
  if (bigram) x = x + bigram(input_ids, compute_dtype_);
  if (smear_gate) x = bos_masked_smear(x, input_ids, smear_gate->weight, smear_lambda);
  x = rms_norm(x);
  if (smear) x = smear(x);
  return x;
}

// x + w * skip, or #1855's gated form lerp(w * skip, x, sigmoid(gate)).
torch::Tensor GPTImpl::merge_skip(const torch::Tensor& x, int64_t j, const torch::Tensor& skip) {
  const auto w = skip_weights[j].to(x.scalar_type());
  if (!skip_gates.defined()) return add_scaled(x, w, skip);
  const auto gate = torch::sigmoid(skip_gates[j].to(x.scalar_type()));
  return torch::lerp(w * skip, x, gate);
}

torch::Tensor GPTImpl::hidden(const torch::Tensor& input_ids, ForwardTrace* trace, int64_t from) {
  PGOLF_CHECK(from >= 0 && from < input_ids.size(1), "hidden: from {} outside [0, {})", from,
              input_ids.size(1));
  auto x = embed(input_ids);
  const auto x0 = x;
  if (trace) trace->add("x0", x0);
  const torch::Tensor ve = ve_shared ? ve_shared(input_ids, compute_dtype_) : torch::Tensor();
  std::vector<std::vector<int64_t>> segments;
  if (document_attention_) segments = document_segments(input_ids, config_.max_doc_len);
  const auto* segs = document_attention_ ? &segments : nullptr;
  // Only the last pass can skip the unscored positions, and only on one lane
  // without document segments; otherwise the tail is cut at the end.
  const bool lanes = config_.parallel_start_layer > 0;
  const int64_t tail_from = lanes || segs ? 0 : from;
  torch::Tensor v0;  // value-residual state: layer 0's values
  const auto recur = looping_ ? std::vector<int64_t>{} : config_.recur_layer_list();
  const auto encoder = config_.encoder_passes(looping_);
  const auto decoder = config_.decoder_passes(looping_);
  const auto passes = static_cast<int64_t>(encoder.size() + decoder.size() + recur.size());
  int64_t pass = 0;
  PGOLF_CHECK(!adapters_ || adapters_->rows() == input_ids.size(0),
              "LoRA adapters for {} documents, a batch of {} rows",
              adapters_ ? adapters_->rows() : 0, input_ids.size(0));
  auto inputs_for = [&](int64_t layer, const LayerMatrices& matrices) {
    const PassAdapters lora = adapters_ ? adapters_->pass(pass) : PassAdapters{};
    const bool last = ++pass == passes;
    return LayerInputs{
        &attention(layer),    &mlp(layer), &matrices, value_embedding_for(layer, ve), &v0,
        last ? tail_from : 0, segs,        lora};
  };
  auto run_layer = [&](int64_t layer, const std::string& name) {
    const LayerMatrices matrices = layer_matrices(layer);
    const LayerInputs in = inputs_for(layer, matrices);
    if (trace) trace->add(name + ".in", x);
    x = blocks[layer]->as<BlockImpl>()->forward(x, x0, in, trace, name);
    if (trace) trace->add(name + ".out", x);
  };
  auto name_of_pass = [&](int64_t layer) {
    const std::string block = "blocks." + std::to_string(layer);
    return looping_ ? "pass." + std::to_string(pass) + "." + block : block;
  };
  std::vector<torch::Tensor> skips;
  for (const int64_t layer : encoder) {
    run_layer(layer, name_of_pass(layer));
    skips.push_back(x);
  }
  const int64_t num_skips = config_.num_skip_weights();
  torch::Tensor lane0, lane1;
  for (size_t j = 0; j < decoder.size(); ++j) {
    const int64_t layer = decoder[j];
    const bool take_skip = static_cast<int64_t>(j) < num_skips && !skips.empty();
    if (lanes && layer >= config_.parallel_start_layer) {
      if (!lane0.defined()) lane0 = lane1 = x;
      if (take_skip) {
        lane0 = merge_skip(lane0, static_cast<int64_t>(j), skips.back());
        skips.pop_back();
      }
      const std::string name = name_of_pass(layer);
      const LayerMatrices matrices = layer_matrices(layer);
      const LayerInputs in = inputs_for(layer, matrices);
      std::tie(lane0, lane1) = blocks[layer]->as<BlockImpl>()->forward_parallel(
          lane0, lane1, x0, in, parallel_resid_lambdas[layer], parallel_post_lambdas[layer]);
      if (trace) trace->add(name + ".lanes", torch::stack({lane0, lane1}));
      continue;
    }
    if (take_skip) {
      x = merge_skip(x, static_cast<int64_t>(j), skips.back());
      skips.pop_back();
    }
    run_layer(layer, name_of_pass(layer));
  }
  if (lane0.defined()) x = merge_lanes(config_.parallel_final_lane, lane0, lane1);
  for (size_t r = 0; r < recur.size(); ++r) {
    run_layer(recur[r], "recur." + std::to_string(r) + ".blocks." + std::to_string(recur[r]));
  }
  if (from > 0 && tail_from == 0) x = x.slice(1, from);
  x = rms_norm(x);
  if (trace) trace->add("final_norm_out", x);
  return x;
}

namespace {

// The output head before the softcap: h @ head^T (+ the head's test-time adapter).
torch::Tensor head_logits(GPTImpl& gpt, const torch::Tensor& h) {
  const auto head =
      gpt.config().tie_embeddings ? gpt.tok_emb->weight : gpt.lm_head->effective_weight();
  const auto z = casted_linear(h, head);
  return gpt.adapters() ? z + gpt.adapters()->head().forward(h) : z;
}

torch::Tensor softcap(const torch::Tensor& z, double cap) {
  // Up-cast for the cross-entropy (bf16 -> fp32; fp64 stays fp64 for gradient checks).
  return (cap * torch::tanh(z / cap)).to(at::promote_types(z.scalar_type(), torch::kFloat));
}

// Cross-entropy of the softcapped logits z (N, V), per row or their mean:
// one fused pass on the CPU (common/fast_kernels.h), the plain ops elsewhere.
torch::Tensor softcap_cross_entropy(const torch::Tensor& z, const torch::Tensor& targets,
                                    double cap, bool mean) {
  if (const FastKernels* fast = fast_kernels_for(z)) {
    auto losses = fast->softcap_cross_entropy(z, targets, cap);
    return mean ? losses.mean() : losses;
  }
  namespace F = torch::nn::functional;
  auto options = F::CrossEntropyFuncOptions();
  if (!mean) options.reduction(torch::kNone);
  return F::cross_entropy(softcap(z, cap), targets, options);
}

}  // namespace

torch::Tensor GPTImpl::softcapped_logits(const torch::Tensor& h) {
  return softcap(head_logits(*this, h), config_.logit_softcap);
}

torch::Tensor GPTImpl::logits(const torch::Tensor& input_ids, ForwardTrace* trace) {
  return softcapped_logits(hidden(input_ids, trace));
}

torch::Tensor GPTImpl::loss(const torch::Tensor& input_ids, const torch::Tensor& target_ids) {
  auto z = head_logits(*this, hidden(input_ids));
  return softcap_cross_entropy(z.view({-1, z.size(-1)}), target_ids.reshape({-1}),
                               config_.logit_softcap, /*mean=*/true);
}

torch::Tensor GPTImpl::token_losses(const torch::Tensor& input_ids, const torch::Tensor& target_ids,
                                    int64_t from) {
  auto h = hidden(input_ids, /*trace=*/nullptr, from);  // checks `from`
  const auto targets = target_ids.slice(1, from);
  auto z = head_logits(*this, h);
  return softcap_cross_entropy(z.reshape({-1, z.size(-1)}), targets.reshape({-1}),
                               config_.logit_softcap, /*mean=*/false)
      .view(targets.sizes());
}

}  // namespace pgolf
