// Calibration for full GPTQ (spec quantize-eval-ttt §3.7): X^T X of every
// quantised matrix's input, collected by running the trained model forward
// with an input observer (GPTImpl::set_input_observer) on
//   train:   successive training batches, the loader continuing where
//            training stopped (#1406 final, §3.7.1), or
//   selfgen: sequences sampled from the model itself (#1406 04-03, §3.7.2):
//            first token uniform, then softmax(logits / 0.8) draws, full
//            forward on the prefix at each step (no KV cache).
// Hessians are keyed by the weights' unbanked state-dict names
// (blocks.{i}.attn.c_q.weight, ...). Two entries' rules (CalibrationOptions):
//   #1406/#562: a layer run twice in one forward (depth recurrence, a shared
//     core) contributes its first run only, as #1406's calibration copy of
//     the model has no recurrence;
//   #1855: every run of a looped block contributes, the tied head's input
//     (the final norm's output) gives tok_emb.weight's Hessian, and rows are
//     attended densely, without document boundaries (its collect_hessians
//     calls forward_logits without cu_seqlens).
//
// In a record run the calibration is part of the 10-minute training budget
// (the data are training data or the model's own samples): its time is
// logged so that it can be counted.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <functional>

#include "model/gpt.h"
#include "quant/hessian.h"

namespace pgolf {

// Input ids [B, T] of one calibration forward.
using CalibrationInputs = std::function<torch::Tensor()>;

struct CalibrationOptions {
  HessianAccumulator::Options hessian = HessianAccumulator::pr1406();
  bool every_pass = false;       // each run of a repeated layer adds to its Hessian
  bool head_input = false;       // the tied head's input, as "tok_emb.weight"
  bool dense_attention = false;  // document attention off while calibrating
};
CalibrationOptions calibration_pr1406();
CalibrationOptions calibration_pr562();
CalibrationOptions calibration_pr1855();

// Runs `batches` forwards (no grad, eval mode, the model's compute dtype) on
// `next_inputs()` and returns one damped/averaged Hessian per observed matrix,
// in first-observation order.
Hessians collect_hessians(GPT& model, const CalibrationInputs& next_inputs, int64_t batches,
                          const CalibrationOptions& options);

// `count` sequences of `length` tokens sampled from the model, `batch` at a
// time, from a CPU generator seeded with `seed`: [count, length] int64 on the CPU.
torch::Tensor generate_calibration_sequences(GPT& model, int64_t count, int64_t length,
                                             double temperature, int64_t batch, uint64_t seed);

}  // namespace pgolf
