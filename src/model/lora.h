// Per-document LoRA adapters of #1855's test-time training
// (docs/entries/pr1855.md §6.3.2): one independent low-rank update per
// document of a batch, on every pass of the looped model.
//
//   lora_b(x) = (x A_b^T) B_b^T * alpha / rank      x (B, T, in) -> (B, T, out)
//   A (B, rank, in) ~ U(+-1/sqrt(in)), B (B, out, rank) = 0: the output starts at 0
//
// Where they add (pass slot s = the s-th block run, encoder then decoder):
// q, k, v: to n Wq^T, n Wk^T, n Wv^T (n the attention's normed input);
// o: lora_o(n) to the attention output after Wo; mlp: lora_mlp(m) to the
// MLP output (m its normed input); head: lora_head(h) to the logits before
// the softcap (h the final-normed hidden state).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "config/config.h"

namespace pgolf {

class BatchedLora {
 public:
  // Draws A from the default CPU generator (then moves it to `device`), as
  // the record's nn.Parameter(torch.empty(...).uniform_()) does.
  BatchedLora(int64_t batch, int64_t in, int64_t out, int64_t rank, double alpha,
              torch::Device device);
  // x: the rows of documents first_row.. of the batch.
  torch::Tensor forward(const torch::Tensor& x) const;
  // B <- 0; A redrawn too unless warm_start_a.
  void reset(bool warm_start_a);
  void set_first_row(int64_t row) { first_row_ = row; }

  torch::Tensor A, B;  // fp32, requires_grad

 private:
  double bound_, scale_;
  int64_t first_row_ = 0;
};

// The adapters one pass of a block uses; null where a target has none.
struct PassAdapters {
  const BatchedLora* q = nullptr;
  const BatchedLora* k = nullptr;
  const BatchedLora* v = nullptr;
  const BatchedLora* o = nullptr;
  const BatchedLora* mlp = nullptr;
};

// Adds lora's output to y, or returns y without one.
torch::Tensor add_lora(const torch::Tensor& y, const BatchedLora* lora, const torch::Tensor& x);

struct LoraShape {
  int64_t batch = 1;
  int64_t rank = 80;
  double alpha = 144;
  bool k = true, mlp = true, o = true;
};

class LoraAdapters {
 public:
  // One adapter set per pass slot of `model` (its encoder and decoder passes,
  // looped or not). A is drawn in the record's order: head, then every
  // slot's q, v, k, mlp and o in turn.
  LoraAdapters(const ModelConfig& model, bool looping, const LoraShape& shape,
               torch::Device device);

  int64_t batch() const { return shape_.batch; }
  // Forwards see only documents row.. of the batch (the rows still active:
  // a batch's documents are sorted by length, so the finished ones lead).
  void set_first_row(int64_t row);
  int64_t rows() const { return shape_.batch - first_row_; }
  int64_t slots() const { return static_cast<int64_t>(q_.size()); }
  PassAdapters pass(int64_t slot) const;
  const BatchedLora& head() const { return head_; }
  std::vector<torch::Tensor> parameters() const;
  int64_t parameters_per_document() const;
  void reset(bool warm_start_a);

 private:
  LoraShape shape_;
  int64_t first_row_ = 0;
  BatchedLora head_;
  std::vector<BatchedLora> q_, v_, k_, mlp_, o_;
};

}  // namespace pgolf
