#include "export/calibration.h"

#include <ATen/Context.h>
#include <torch/torch.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/error.h"

namespace pgolf {
namespace {

// Restores the model's train/eval mode and document attention, and removes
// the observer, on exit.
class CalibrationMode {
 public:
  explicit CalibrationMode(GPT& model)
      : model_(model),
        was_training_(model->is_training()),
        document_attention_(model->document_attention()) {
    model_->eval();
  }
  ~CalibrationMode() {
    model_->set_input_observer({});
    model_->set_document_attention(document_attention_);
    model_->train(was_training_);
  }
  CalibrationMode(const CalibrationMode&) = delete;
  CalibrationMode& operator=(const CalibrationMode&) = delete;

 private:
  GPT& model_;
  bool was_training_;
  bool document_attention_;
};

}  // namespace

CalibrationOptions calibration_pr1406() { return {}; }

CalibrationOptions calibration_pr562() { return {HessianAccumulator::pr562()}; }

// H = sum X^T X / batches, undamped (#1855's GPTQ damps 0.01 mean diag itself).
CalibrationOptions calibration_pr1855() {
  return {{HessianAccumulator::Average::kPerBatch, 0.0}, true, true, true};
}

Hessians collect_hessians(GPT& model, const CalibrationInputs& next_inputs, int64_t batches,
                          const CalibrationOptions& options) {
  PGOLF_CHECK(batches > 0, "Hessian calibration needs at least one batch");
  CalibrationMode mode(model);
  torch::NoGradGuard no_grad;
  if (options.dense_attention) model->set_document_attention(false);
  std::vector<std::string> order;
  std::map<std::string, std::unique_ptr<HessianAccumulator>> accumulators;
  std::set<std::string> seen;  // matrices already observed in this forward
  const auto observe = [&](const std::string& name, const torch::Tensor& input) {
    const bool first_run = seen.insert(name).second;
    if (!first_run && !options.every_pass) return;
    auto& acc = accumulators[name];
    if (!acc) {
      acc = std::make_unique<HessianAccumulator>(input.size(-1), options.hessian);
      order.push_back(name);
    }
    acc->add(input, /*new_batch=*/first_run);
  };
  model->set_input_observer(observe);
  const bool head_input = options.head_input && model->config().tie_embeddings;
  const auto device = model->parameters().front().device();
  for (int64_t b = 0; b < batches; ++b) {
    seen.clear();
    const torch::Tensor h = model->hidden(next_inputs().to(device, torch::kLong));
    if (head_input) observe("tok_emb.weight", h);
  }
  Hessians out;
  out.reserve(order.size());
  for (const auto& name : order) out.emplace_back(name, accumulators.at(name)->hessian());
  return out;
}

torch::Tensor generate_calibration_sequences(GPT& model, int64_t count, int64_t length,
                                             double temperature, int64_t batch, uint64_t seed) {
  PGOLF_CHECK(count > 0 && length > 0 && batch > 0 && temperature > 0,
              "self-generated calibration: bad count {} / length {} / batch {} / temperature {}",
              count, length, batch, temperature);
  CalibrationMode mode(model);
  torch::NoGradGuard no_grad;
  const auto device = model->parameters().front().device();
  const int64_t vocab = model->config().vocab_size;
  // Sampled where the model runs, from a generator of that device seeded with
  // `seed` (the reference's CUDA generator): no logits copied to the host.
  auto generator = device.is_cpu() ? at::detail::createCPUGenerator(seed)
                                   : at::globalContext()
                                         .getAcceleratorHooksInterface(device.type())
                                         .getNewGenerator(device.index());
  generator.set_current_seed(seed);
  std::vector<torch::Tensor> done;
  for (int64_t start = 0; start < count; start += batch) {
    const int64_t b = std::min(batch, count - start);
    auto seqs = torch::randint(vocab, {b, 1}, generator, torch::dtype(torch::kLong).device(device));
    for (int64_t t = 1; t < length; ++t) {
      const auto logits = model->logits(seqs).select(1, t - 1);  // [b, V]
      const auto probs = torch::softmax(logits.to(torch::kFloat) / temperature, -1);
      seqs = torch::cat({seqs, torch::multinomial(probs, 1, false, generator)}, 1);
    }
    done.push_back(seqs.to(torch::kCPU));
  }
  return torch::cat(done, 0);
}

}  // namespace pgolf
