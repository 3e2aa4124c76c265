// Calibration Hessians for full GPTQ (spec §3.7): H = X^T X of a linear
// layer's input activations X [tokens, in], summed over calibration forwards
// and normalised by one of the seeds' rules:
//   #1406: H = Σ X^T X / batches,  then H += 0.005 · max(mean diag H, 1e-6) · I
//   #562:  H = Σ X^T X / rows seen, no damping (gptq_quantize_pr562 damps)
// A model's forward hook calls add() with each batch's input; nothing here
// knows about the model. "Batches" are add() calls: a layer that runs twice
// in one forward (depth recurrence) would count twice, which #1406 avoids by
// calibrating a copy of the model without recurrence.
#pragma once

#include <torch/types.h>

#include <string>
#include <utility>
#include <vector>

namespace pgolf {

class HessianAccumulator {
 public:
  enum class Average { kPerBatch, kPerRow };
  struct Options {
    Average average = Average::kPerBatch;
    double damp = 0.005;  // fraction of max(mean diag, 1e-6) added to the diagonal; 0 = none
  };
  static Options pr1406() { return {Average::kPerBatch, 0.005}; }
  static Options pr562() { return {Average::kPerRow, 0.0}; }

  explicit HessianAccumulator(int64_t columns, Options options = pr1406());

  // Adds X^T X of one batch of inputs [..., columns] (any float dtype and
  // device; the product is taken there in fp32). Per batch (#1406) the sum
  // lives on the CPU; per row (#562) it is one addmm on the inputs' device.
  // `new_batch` false: a further run of the layer in the same forward (#1855
  // counts the runs of a looped block but divides by the forwards).
  void add(const torch::Tensor& inputs, bool new_batch = true);

  int64_t columns() const { return columns_; }
  int64_t batches() const { return batches_; }
  int64_t rows() const { return rows_; }

  // The averaged, damped Hessian [columns, columns], fp32 on the CPU.
  // Throws if nothing was added.
  torch::Tensor hessian() const;

 private:
  int64_t columns_;
  Options options_;
  torch::Tensor sum_;  // fp32 [columns, columns], created by the first add()
  int64_t batches_ = 0;
  int64_t rows_ = 0;
};

// Hessians by weight name ("blocks.0.attn.c_q.weight"), in collection order.
using Hessians = std::vector<std::pair<std::string, torch::Tensor>>;

// The Hessian for tensor `name` with `columns` inputs, or nullptr:
//   exact: a key equal to `name` (#1406); throws if its size is not columns.
//   substring: the first key that is a substring of `name` and has `columns`
//     columns (#562 matches module name + ".weight" that way).
enum class HessianMatch { kExact, kSubstring };
const torch::Tensor* find_hessian(const Hessians& hessians, const std::string& name,
                                  int64_t columns, HessianMatch match);

}  // namespace pgolf
