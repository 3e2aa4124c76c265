// The GPT of the challenge and of the four reference entries (spec
// model-and-training §2-3, §8):
//
//   x  = tok_emb[ids] (+ BigramHash(ids)) (-> #1855's BOS-masked smear)
//        -> rmsnorm (-> #1406's SmearGate)                            = x0
//   U-Net over the passes: the first half pushes outputs, the second half
//   adds skip_weights[j] * pop() before each layer (#1855: gated, as a lerp);
//   #1855: the passes loop blocks loop_start..loop_end once looping is on,
//   and decoder blocks from parallel_start_layer run on two lanes
//   then the extra passes of recur_layers (#1406), same weights and state
//   rmsnorm -> tied head (x @ tok_emb^T) -> softcap 30*tanh(z/30) -> CE in fp32
// With max_doc_len > 0 attention stays inside each document of a row
// (model/documents.h).
//
// A logical layer = a Block (its resid_mix, scales, LN-scale factor) + the
// attention/MLP weights of its core: its own (blocks layout), a shared
// LayerCore (cores layout, #461/#456) or slices of the banks (#1406).
// Parameters are registered in the reference's state_dict order and under its
// names, so named_parameters() *is* the exchange order for safetensors files
// and artifacts.
//
// Precision: master weights are fp32. `compute_dtype` plays the role of the
// reference's bf16 autocast: activations and matmul operands are cast to it,
// RMSNorm computes in fp32 internally, and the logits are up-cast to fp32
// before the cross-entropy.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/parameterlist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/pimpl.h>

#include <string>
#include <vector>

#include "config/config.h"
#include "model/attention.h"
#include "model/block.h"
#include "model/embeddings.h"
#include "model/layers.h"
#include "model/lora.h"

namespace pgolf {

class GPTImpl : public torch::nn::Module {
 public:
  // Builds and initialises the model as the reference does, drawing from the
  // default generator in the reference's order and rounding to bf16 as its
  // main() does (seed it with torch::manual_seed first): the same seed gives
  // the reference's initial weights bit for bit.
  explicit GPTImpl(const ModelConfig& config);

  // Final-normed hidden states of positions from..T-1, (B, T - from, D) in the
  // compute dtype. With from > 0 the last layer to run computes keys and
  // values everywhere and everything else on those positions only.
  torch::Tensor hidden(const torch::Tensor& input_ids, ForwardTrace* trace = nullptr,
                       int64_t from = 0);
  // Soft-capped logits in fp32, (B, T, V).
  torch::Tensor logits(const torch::Tensor& input_ids, ForwardTrace* trace = nullptr);
  // Mean cross-entropy over all positions (the reference's forward()).
  torch::Tensor loss(const torch::Tensor& input_ids, const torch::Tensor& target_ids);
  // Cross-entropy of positions from..T-1, (B, T - from) fp32. A sliding
  // window scores only its tail, so the last layer's queries, MLP and the
  // head run on those positions only (hidden(..., from)).
  torch::Tensor token_losses(const torch::Tensor& input_ids, const torch::Tensor& target_ids,
                             int64_t from = 0);

  void set_compute_dtype(torch::ScalarType dtype) { compute_dtype_ = dtype; }
  // Late QAT: every CastedLinear (and with include_banks the banks) uses
  // fake-quantised weights in training mode; spec.qmax = 0 turns it off.
  void set_qat(const FakeQuantSpec& spec, bool include_banks);
  bool qat_active() const { return qat_.active(); }
  // Shows every quantised matrix's input to `observer` during forwards (names
  // as in unbank_state_dict: blocks.{l}.attn.c_q.weight, cores.{c}.mlp.fc.weight,
  // bigram.proj.weight, ve_shared.proj.weight); an empty function removes it.
  // A layer that runs twice in one forward (recur_layers) is shown twice.
  void set_input_observer(InputObserver observer);
  torch::ScalarType compute_dtype() const { return compute_dtype_; }
  // #1855's depth recurrence: on, blocks loop_start..loop_end run num_loops
  // more times. A model is built looped (the architecture it is evaluated and
  // exported with); training starts with it off and turns it on at
  // ENABLE_LOOPING_AT.
  void set_looping(bool on) { looping_ = on && config_.num_loops > 0; }
  bool looping() const { return looping_; }
  // Attention cut at document boundaries (max_doc_len > 0); on by default,
  // off where the reference attends densely (GPTQ calibration).
  void set_document_attention(bool on) { document_attention_ = on && config_.max_doc_len > 0; }
  bool document_attention() const { return document_attention_; }
  // NTK-aware RoPE above `len` tokens in every attention (0: off); returns the
  // previous value. Long-context evaluation sets it to TRAIN_SEQ_LEN.
  int64_t set_rope_ntk_ref_len(int64_t len);
  // #1855's test-time adapters (model/lora.h) in every forward until reset to
  // null: rows of a batch are the adapters' documents, so a forward's batch
  // must be adapters->batch(). Not owned.
  void set_adapters(const LoraAdapters* adapters);
  const LoraAdapters* adapters() const { return adapters_; }
  const ModelConfig& config() const { return config_; }

  // The matrices and modules logical layer `layer` runs with.
  LayerMatrices layer_matrices(int64_t layer);
  CausalSelfAttentionImpl& attention(int64_t layer);
  MLPImpl& mlp(int64_t layer);

  torch::Tensor skip_weights;  // (num_skip, D)
  torch::Tensor skip_gates;    // (num_skip, D), #1855
  // #1855's lanes: per block, post (2, 2) = [attn, mlp] x [lane0, lane1] and resid (2).
  torch::Tensor parallel_post_lambdas, parallel_resid_lambdas;
  torch::Tensor smear_lambda;        // (1), #1855's smear
  CastedLinear smear_gate{nullptr};  // (1, gate_window), #1855's smear
  // banks layout: [i] = Wq_i, [L+i] = Wo_i | [i] = Wk_i, [L+i] = Wv_i | W_fc_i | W_proj_i
  torch::Tensor qo_bank, kv_bank, mlp_up_bank, mlp_down_bank;
  torch::nn::Embedding tok_emb{nullptr};
  BigramHash bigram{nullptr};
  SmearGate smear{nullptr};
  torch::nn::ModuleList cores{nullptr};   // cores layout: LayerCore per core
  torch::nn::ModuleList blocks{nullptr};  // one Block per logical layer
  ValueEmbedding ve_shared{nullptr};
  torch::nn::ParameterList ve_layer_scales{nullptr};  // one (1) scalar per VE layer
  CastedLinear lm_head{nullptr};                      // only when tie_embeddings = false

 private:
  void init_weights();
  void init_orthogonal_linears(bool scale_proj);
  void round_to_bf16_like_the_reference();
  void halve_shared_core_gradients();
  torch::Tensor value_embedding_for(int64_t layer, const torch::Tensor& ve);
  torch::Tensor softcapped_logits(const torch::Tensor& hidden);
  torch::Tensor embed(const torch::Tensor& input_ids);
  torch::Tensor merge_skip(const torch::Tensor& x, int64_t j, const torch::Tensor& skip);

  ModelConfig config_;
  FakeQuantSpec qat_;
  InputObserver observer_;
  bool qat_banks_ = false;
  std::vector<int64_t> ve_layers_;
  torch::ScalarType compute_dtype_ = torch::kFloat;
  bool looping_ = false;
  bool document_attention_ = false;
  const LoraAdapters* adapters_ = nullptr;
};
TORCH_MODULE(GPT);

}  // namespace pgolf
