// Which parameters test-time training updates, and at what learning-rate
// scale (spec quantize-eval-ttt §5.2-5.7).
//
//  - freeze_blocks = F: every parameter of blocks.{b<F}. and of the cores they
//    use stays fixed (#461 freezes blocks 0-1, and so cores 0-1, which block
//    10 shares); with scale_bank_slices the bank slices of those layers too.
//  - block_lr_min = m < 1: discriminative LR, layer l >= F gets
//    m + (1-m) (l-F)/max(n-F-1, 1), on the block's matrices themselves: its
//    blocks.{l}. parameters, its core (the smallest scale of the layers that
//    share it) and, with scale_bank_slices, its slices of #1406's banks.
//    Without scale_bank_slices only tensors named blocks.{l}. are scaled, which
//    is what #1406's dTTT does (its matrices live in the banks, §5.6).
//  - proj_mult / fc_mult: #562's groups by name, ".proj." (attention out, MLP
//    down, bigram.proj) and ".fc." (MLP up); the banks' Wo and down slices
//    count as proj, the up bank as fc.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "model/gpt.h"

namespace pgolf {

struct TrainableParam {
  std::string name;
  torch::Tensor value;
  torch::Tensor lr_scale;  // broadcastable to value (a scalar, or (slices,1,1) for banks)
};

struct ParamSelection {
  int64_t freeze_blocks = 0;
  double block_lr_min = 1.0;
  bool scale_bank_slices = true;
  double proj_mult = 1.0;
  double fc_mult = 1.0;
};

struct TrainableSet {
  std::vector<TrainableParam> params;  // in named_parameters() order
  std::vector<torch::Tensor> frozen;   // requires_grad is switched off while training
  int64_t trainable_count = 0;         // scalars
  int64_t frozen_count = 0;
};

TrainableSet select_trainable(GPT& model, const ParamSelection& selection);

// Sets requires_grad = false on the frozen tensors for its lifetime.
class FreezeGuard {
 public:
  explicit FreezeGuard(const TrainableSet& set);
  ~FreezeGuard();
  FreezeGuard(const FreezeGuard&) = delete;
  FreezeGuard& operator=(const FreezeGuard&) = delete;

 private:
  std::vector<torch::Tensor> frozen_;
};

}  // namespace pgolf
