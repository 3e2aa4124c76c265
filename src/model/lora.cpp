#include "model/lora.h"

#include <cmath>

#include "common/error.h"

namespace pgolf {

BatchedLora::BatchedLora(int64_t batch, int64_t in, int64_t out, int64_t rank, double alpha,
                         torch::Device device)
    : bound_(1.0 / std::sqrt(static_cast<double>(in))), scale_(alpha / static_cast<double>(rank)) {
  A = torch::empty({batch, rank, in}).uniform_(-bound_, bound_).to(device).requires_grad_();
  B = torch::zeros({batch, out, rank}, torch::TensorOptions().device(device)).requires_grad_();
}

torch::Tensor BatchedLora::forward(const torch::Tensor& x) const {
  const auto dtype = x.scalar_type();
  const auto a = first_row_ > 0 ? A.slice(0, first_row_) : A;
  const auto b = first_row_ > 0 ? B.slice(0, first_row_) : B;
  return torch::matmul(torch::matmul(x, a.transpose(1, 2).to(dtype)), b.transpose(1, 2).to(dtype)) *
         scale_;
}

void BatchedLora::reset(bool warm_start_a) {
  torch::NoGradGuard no_grad;
  if (!warm_start_a) {
    A.copy_(torch::empty(A.sizes()).uniform_(-bound_, bound_));
  }
  B.zero_();
}

torch::Tensor add_lora(const torch::Tensor& y, const BatchedLora* lora, const torch::Tensor& x) {
  return lora ? y + lora->forward(x) : y;
}

LoraAdapters::LoraAdapters(const ModelConfig& model, bool looping, const LoraShape& shape,
                           torch::Device device)
    : shape_(shape),
      head_(shape.batch, model.model_dim, model.vocab_size, shape.rank, shape.alpha, device) {
  PGOLF_CHECK(shape.batch > 0 && shape.rank > 0,
              "LoRA adapters: batch {} and rank {} must be "
              "positive",
              shape.batch, shape.rank);
  PGOLF_CHECK(model.recur_layer_list().empty(),
              "LoRA adapters: the extra passes of RECUR_LAYERS have no adapter slots");
  const auto slots = model.encoder_passes(looping).size() + model.decoder_passes(looping).size();
  const int64_t D = model.model_dim, kv = model.kv_dim();
  auto make = [&](std::vector<BatchedLora>& into, int64_t out) {
    for (size_t s = 0; s < slots; ++s) {
      into.emplace_back(shape.batch, D, out, shape.rank, shape.alpha, device);
    }
  };
  make(q_, D);
  make(v_, kv);
  if (shape.k) make(k_, kv);
  if (shape.mlp) make(mlp_, D);
  if (shape.o) make(o_, D);
}

PassAdapters LoraAdapters::pass(int64_t slot) const {
  PGOLF_CHECK(slot >= 0 && slot < slots(), "LoRA adapters: pass slot {} outside [0, {})", slot,
              slots());
  const auto s = static_cast<size_t>(slot);
  return {&q_[s], k_.empty() ? nullptr : &k_[s], &v_[s], o_.empty() ? nullptr : &o_[s],
          mlp_.empty() ? nullptr : &mlp_[s]};
}

std::vector<torch::Tensor> LoraAdapters::parameters() const {
  std::vector<torch::Tensor> out{head_.A, head_.B};
  for (const auto* set : {&q_, &v_, &k_, &mlp_, &o_}) {
    for (const auto& lora : *set) {
      out.push_back(lora.A);
      out.push_back(lora.B);
    }
  }
  return out;
}

int64_t LoraAdapters::parameters_per_document() const {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n / shape_.batch;
}

void LoraAdapters::set_first_row(int64_t row) {
  PGOLF_CHECK(row >= 0 && row < shape_.batch, "LoRA adapters: first row {} outside [0, {})", row,
              shape_.batch);
  first_row_ = row;
  head_.set_first_row(row);
  for (auto* set : {&q_, &v_, &k_, &mlp_, &o_}) {
    for (auto& lora : *set) lora.set_first_row(row);
  }
}

void LoraAdapters::reset(bool warm_start_a) {
  head_.reset(warm_start_a);
  for (auto* set : {&q_, &v_, &k_, &mlp_, &o_}) {
    for (auto& lora : *set) lora.reset(warm_start_a);
  }
}

}  // namespace pgolf
