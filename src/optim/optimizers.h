// The optimizer split (spec §4.3; model/param_groups.h): AdamW for the
// embedding tables, Muon for the matrices, AdamW for scalars/control tensors,
// Adam for an untied head. Every group's LR is base_lr * s each step
// (train/schedule.h); decoupled weight decay ADAM_WD / MUON_WD uses that LR.
#pragma once

#include <torch/optim/adamw.h>

#include <memory>
#include <vector>

#include "config/config.h"
#include "model/gpt.h"
#include "optim/muon.h"

namespace pgolf {

class Optimizers {
 public:
  Optimizers(GPT& model, const TrainConfig& config);

  void set_lr_scale(double scale);
  void set_muon_momentum(double momentum) { muon_momentum_ = momentum; }
  void step();
  void zero_grad();
  // Back to the freshly constructed state (used after the warm-up steps).
  void reset_state();

  Muon& muon() { return *muon_; }
  std::vector<torch::optim::AdamW*> adams();
  double muon_lr() const { return muon_lr_; }

 private:
  struct AdamGroup {
    std::unique_ptr<torch::optim::AdamW> optimizer;
    double base_lr;
    double weight_decay;
  };
  AdamGroup make_adam(std::vector<torch::Tensor> params, double lr, double weight_decay) const;

  TrainConfig config_;
  std::vector<AdamGroup> adam_;  // tok, [head], scalar: the reference's step order
  std::unique_ptr<Muon> muon_;
  double muon_base_lr_ = 0, muon_lr_ = 0, muon_momentum_ = 0;
  std::vector<torch::Tensor> all_params_;
};

}  // namespace pgolf
