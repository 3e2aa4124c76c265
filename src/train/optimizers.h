// The baseline's optimizer split (train_gpt.py): Adam for the token embedding,
// Muon for block matrices, Adam for scalars/control tensors, and Adam for an
// untied head. Every group's LR is base_lr * s each step (train/schedule.h).
#pragma once

#include <torch/optim/adam.h>

#include <memory>
#include <vector>

#include "config/config.h"
#include "model/gpt.h"
#include "train/muon.h"

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
  std::vector<torch::optim::Adam*> adams();
  double muon_lr() const { return muon_lr_; }

 private:
  struct AdamGroup {
    std::unique_ptr<torch::optim::Adam> optimizer;
    double base_lr;
  };
  AdamGroup make_adam(std::vector<torch::Tensor> params, double lr) const;

  TrainConfig config_;
  std::vector<AdamGroup> adam_;  // tok, [head], scalar: the reference's step order
  std::unique_ptr<Muon> muon_;
  double muon_base_lr_ = 0, muon_lr_ = 0, muon_momentum_ = 0;
  std::vector<torch::Tensor> all_params_;
};

}  // namespace pgolf
