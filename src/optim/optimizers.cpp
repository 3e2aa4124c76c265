#include "optim/optimizers.h"

#include "common/error.h"
#include "optim/adamw_step.h"
#include "quant/param_groups.h"

namespace pgolf {

Optimizers::AdamGroup Optimizers::make_adam(std::vector<torch::Tensor> params, double lr,
                                            double weight_decay) const {
  auto options = torch::optim::AdamWOptions(lr)
                     .betas({config_.beta1, config_.beta2})
                     .eps(config_.adam_eps)
                     .weight_decay(weight_decay);
  return AdamGroup{std::make_unique<torch::optim::AdamW>(std::move(params), options), lr,
                   weight_decay};
}

Optimizers::Optimizers(GPT& model, const TrainConfig& config) : config_(config) {
  std::vector<torch::Tensor> tok, head, matrix, scalar;
  const bool banked = model->config().weight_layout == WeightLayout::kBanks;
  for (const auto& item : model->named_parameters(/*recurse=*/true)) {
    all_params_.push_back(item.value());
    switch (param_group(item.key(), item.value(), banked)) {
      case ParamGroup::kTokenEmbedding:
        tok.push_back(item.value());
        break;
      case ParamGroup::kHead:
        head.push_back(item.value());
        break;
      case ParamGroup::kMatrix:
        matrix.push_back(item.value());
        break;
      case ParamGroup::kScalar:
        scalar.push_back(item.value());
        break;
    }
  }
  PGOLF_CHECK(!tok.empty(), "model has no tok_emb.weight");
  const double token_lr = model->config().tie_embeddings ? config.tied_embed_lr : config.embed_lr;
  adam_.push_back(
      make_adam(tok, token_lr, config.embed_wd >= 0 ? config.embed_wd : config.adam_wd));
  if (!head.empty()) adam_.push_back(make_adam(head, config.head_lr, 0.0));
  adam_.push_back(make_adam(scalar, config.scalar_lr, config.adam_wd));
  MuonOptions muon_options;
  muon_options.backend_steps = config.muon_backend_steps;
  muon_options.ns_dtype = config.muon_ns_bf16 ? torch::kBFloat16 : torch::kFloat;
  muon_options.ns_bf16_via_fp32 = config.muon_ns_bf16_via_fp32;
  muon_options.weight_decay = config.muon_wd;
  muon_options.row_normalize = config.muon_eq_r || config.muon_row_normalize;
  muon_options.coefficients = config.muon_ns_coefficients;
  muon_options.bf16_momentum = config.muon_bf16_momentum;
  muon_ = std::make_unique<Muon>(matrix, muon_options);
  muon_base_lr_ = muon_lr_ = config.matrix_lr;
  muon_momentum_ = config.muon_momentum;
}

void Optimizers::set_lr_scale(double scale) {
  for (auto& group : adam_) {
    for (auto& param_group : group.optimizer->param_groups()) {
      static_cast<torch::optim::AdamWOptions&>(param_group.options()).lr(group.base_lr * scale);
    }
  }
  muon_lr_ = muon_base_lr_ * scale;
}

void Optimizers::step() {
  for (auto& group : adam_) adamw_step_foreach(*group.optimizer);
  muon_->step(muon_lr_, muon_momentum_);
}

void Optimizers::zero_grad() {
  for (auto& p : all_params_) p.mutable_grad() = torch::Tensor();
}

void Optimizers::reset_state() {
  for (auto& group : adam_) {
    auto params = group.optimizer->param_groups().front().params();
    group = make_adam(params, group.base_lr, group.weight_decay);
  }
  muon_->reset_state();
}

std::vector<torch::optim::AdamW*> Optimizers::adams() {
  std::vector<torch::optim::AdamW*> out;
  for (auto& group : adam_) out.push_back(group.optimizer.get());
  return out;
}

}  // namespace pgolf
