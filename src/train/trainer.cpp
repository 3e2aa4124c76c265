#include "train/trainer.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <nlohmann/json.hpp>

#include "common/device.h"
#include "model/weights.h"
#include "optim/grad_clip.h"
#include "train/checkpoint.h"
#include "train/schedule.h"

namespace pgolf {

torch::Tensor train_step(GPT& model, Optimizers& optimizers, const BatchSource& next_batch,
                         const TrainConfig& config, int64_t accum, torch::Device device,
                         double lr_scale, double muon_momentum, ProcessGroup* group) {
  optimizers.zero_grad();
  auto train_loss = torch::zeros({}, torch::TensorOptions().device(device));
  for (int64_t micro = 0; micro < accum; ++micro) {
    const TokenBatch batch = next_batch();
    auto loss = model->loss(batch.inputs.to(device, /*non_blocking=*/true),
                            batch.targets.to(device, /*non_blocking=*/true));
    train_loss += loss.detach();
    (loss / static_cast<double>(accum)).backward();
  }
  train_loss /= static_cast<double>(accum);
  if (group && group->active()) {
    // Data parallel: every rank's gradient is the mean over its micro-batches;
    // their mean over ranks is the gradient of the whole global batch.
    std::vector<torch::Tensor> grads;
    for (auto& p : model->parameters()) {
      if (p.grad().defined()) grads.push_back(p.grad());
    }
    // The logged loss is the global batch's too (one more scalar).
    grads.push_back(train_loss);
    group->all_reduce_mean(grads);
  }
  optimizers.set_muon_momentum(muon_momentum);
  optimizers.set_lr_scale(lr_scale);
  if (config.grad_clip_norm > 0) {
    // LibTorch's clip_grad_norm_ returns the norm as a double: a host sync.
    clip_grad_norm_no_sync(model->parameters(), config.grad_clip_norm);
  }
  optimizers.step();
  optimizers.zero_grad();
  return train_loss;
}

nlohmann::json val_record(const ValResult& r) {
  return {{"val_loss", r.val_loss},
          {"val_bpb", r.val_bpb},
          {"tokens", r.token_count},
          {"bytes", r.byte_count},
          {"eval_time_ms", 1000.0 * r.seconds}};
}

Trainer::Trainer(const Config& config, GPT model, ProcessGroup& group, torch::Device device, Io io)
    : config_(config),
      tc_(config.train),
      model_(model),
      group_(group),
      device_(device),
      io_(std::move(io)),
      accum_(config.train.resolved_grad_accum(group.world_size())),
      optimizers_(model_, config.train),
      loader_(make_loader()),
      averages_(config.train, model_->parameters()),
      late_qat_(config.train, model_),
      clock_(device) {
  optimizers_.muon().set_process_group(&group_);
  // #1855: training starts without the loop; maybe_start_looping turns it on.
  model_->set_looping(false);
}

std::string Trainer::pass_schedule() const {
  const auto& m = config_.model;
  return fmt::format("encoder:[{}] decoder:[{}]",
                     fmt::join(m.encoder_passes(model_->looping()), ", "),
                     fmt::join(m.decoder_passes(model_->looping()), ", "));
}

// ENABLE_LOOPING_AT: the loop switches on before the first step whose
// training fraction reaches it, and stays on.
void Trainer::maybe_start_looping(double frac) {
  if (config_.model.num_loops == 0 || model_->looping() || frac < tc_.enable_looping_at) return;
  model_->set_looping(true);
  io_.log->print(
      fmt::format("layer_loop:enabled step:{} frac:{:.3f} {}", step_, frac, pass_schedule()));
}

// The next micro-batch is read while the current step computes; on CUDA it is
// pinned, so that train_step's copy to the device does not block.
std::unique_ptr<PrefetchingTokenLoader> Trainer::make_loader() const {
  return std::make_unique<PrefetchingTokenLoader>(
      std::make_unique<DistributedTokenLoader>(config_.data.train_glob(), config_.model.vocab_size,
                                               group_.rank(), group_.world_size(),
                                               tc_.train_loader == TrainLoader::kDocuments),
      PrefetchingTokenLoader::Shape{tc_.train_batch_tokens, tc_.train_seq_len, accum_},
      /*pin_memory=*/device_.is_cuda());
}

void Trainer::warm_up() {
  if (tc_.warmup_steps <= 0) return;
  StateDict initial;
  for (auto& [name, t] : state_dict(model_)) initial.emplace_back(name, t.clone());
  const BatchSource batches = [this] { return loader_->next_batch(); };
  auto run_warmup = [&](const char* label) {
    for (int64_t i = 0; i < tc_.warmup_steps; ++i) {
      // As in the reference, warm-up runs at the base LRs and the optimizer's
      // constructed momentum; none of it survives the restore below.
      train_step(model_, optimizers_, batches, tc_, accum_, device_, 1.0, tc_.muon_momentum,
                 &group_);
      if (tc_.warmup_steps <= 20 || (i + 1) % 10 == 0 || i + 1 == tc_.warmup_steps) {
        io_.log->print(fmt::format("{}:{}/{}", label, i + 1, tc_.warmup_steps));
      }
    }
  };
  run_warmup("warmup_step");
  if (config_.model.num_loops > 0) {
    // #1855 warms the looped graph up too, then training starts unlooped.
    model_->set_looping(true);
    io_.log->print("loop_warmup:enabled " + pass_schedule());
    run_warmup("loop_warmup_step");
    model_->set_looping(false);
  }
  load_state_dict(model_, initial);
  optimizers_.reset_state();
  // The weight averages start from the weights training starts from.
  averages_ = WeightAverages(tc_, model_->parameters());
  loader_ = make_loader();
}

void Trainer::save_checkpoint() {
  pgolf::save_checkpoint(io_.checkpoint, config_,
                         {&model_, &optimizers_, averages_.ema(), averages_.swa()},
                         {step_, clock_.total_ms(), loader_->position(), late_qat_.on(),
                          model_->looping(), stop_after_step_});
}

void Trainer::resume() {
  const TrainingProgress restored = load_checkpoint(
      io_.checkpoint, config_, {&model_, &optimizers_, averages_.ema(), averages_.swa()});
  step_ = restored.step;
  clock_.set_total_ms(restored.training_time_ms);
  stop_after_step_ = restored.stop_after_step;
  loader_->seek(restored.data);
  if (restored.qat_on) late_qat_.set(true);
  model_->set_looping(restored.looping);
  io_.log->print(fmt::format("resumed: step:{} train_time:{:.0f}ms from {}", step_,
                             clock_.total_ms(), io_.checkpoint.string()));
}

TrainResult Trainer::run() {
  const BatchSource batches = [this] { return loader_->next_batch(); };
  progress_ = std::make_unique<Progress>("train", tc_.iterations, "steps", config_.runtime.quiet);
  clock_.start();
  while (true) {
    const bool last = is_last_step();
    if (last || (tc_.val_loss_every > 0 && step_ % tc_.val_loss_every == 0)) validate_and_log();
    if (last) break;
    const double elapsed_before_ms = clock_.running_ms();
    const double scale = lr_multiplier(tc_, step_, elapsed_before_ms);
    const double momentum = muon_momentum_at(tc_, step_);
    maybe_start_looping(tc_.training_frac(step_, elapsed_before_ms));
    if (late_qat_.maybe_enable(scale)) {
      io_.log->print(fmt::format("late_qat:enabled step:{} scale:{:.4f}", step_, scale));
    }
    const torch::Tensor loss =
        train_step(model_, optimizers_, batches, tc_, accum_, device_, scale, momentum, &group_);
    ++step_;
    if (averages_.after_step(step_, scale)) io_.log->print(fmt::format("swa:start step:{}", step_));
    const double elapsed_ms = clock_.running_ms();
    log_step(loss, scale, momentum, elapsed_ms);
    stop_when_out_of_time(agreed_elapsed_ms(elapsed_ms));
    maybe_checkpoint();
  }
  progress_->finish();
  model_->set_looping(true);  // what is evaluated and exported
  result_.steps = step_;
  result_.train_time_ms = clock_.total_ms();
  return result_;
}

bool Trainer::is_last_step() const {
  return step_ == tc_.iterations || (stop_after_step_ && step_ >= *stop_after_step_);
}

void Trainer::validate_and_log() {
  clock_.pause();
  result_.last_val = io_.validate();
  const ValResult& v = result_.last_val;
  const double ms = clock_.total_ms();
  io_.log->print(fmt::format(
      "step:{}/{} val_loss:{:.4f} val_bpb:{:.4f} train_time:{:.0f}ms step_avg:{:.2f}ms", step_,
      tc_.iterations, v.val_loss, v.val_bpb, ms, ms / std::max<int64_t>(step_, 1)));
  nlohmann::json record = val_record(v);
  record["event"] = "val";
  record["step"] = step_;
  record["train_time_ms"] = ms;
  io_.metrics->write(record);
  if (is_last_step() && stop_after_step_ && step_ < tc_.iterations) {
    io_.log->print(fmt::format("stopping_early: wallclock_cap train_time:{:.0f}ms step:{}/{}", ms,
                               step_, tc_.iterations));
  }
  clock_.start();
}

void Trainer::log_step(const torch::Tensor& loss, double lr_scale, double momentum,
                       double elapsed_ms) {
  const bool due = tc_.train_log_every > 0 &&
                   (step_ <= 10 || step_ % tc_.train_log_every == 0 || stop_after_step_);
  if (due) {
    result_.final_train_loss = loss.item<double>();
    io_.log->print(fmt::format("step:{}/{} train_loss:{:.4f} train_time:{:.0f}ms step_avg:{:.2f}ms",
                               step_, tc_.iterations, result_.final_train_loss, elapsed_ms,
                               elapsed_ms / step_));
    io_.metrics->write({{"event", "train"},
                        {"step", step_},
                        {"train_loss", result_.final_train_loss},
                        {"train_time_ms", elapsed_ms},
                        {"lr_scale", lr_scale},
                        {"muon_momentum", momentum},
                        {"tokens", step_ * tc_.train_batch_tokens}});
  }
  const double cap_ms = tc_.budget_ms();
  if (cap_ms > 0) {
    // Under a time cap the step count is set by the clock: show the steps the
    // remaining time allows at the mean step time so far.
    const double remaining_steps = std::max(cap_ms - elapsed_ms, 0.0) / (elapsed_ms / step_);
    progress_->set_total(
        std::min<int64_t>(tc_.iterations, step_ + static_cast<int64_t>(remaining_steps)));
  }
  progress_->update(step_, due ? fmt::format("loss {:.4f}", result_.final_train_loss) : "");
}

// Every rank must stop after the same step, so the slowest rank's clock
// decides. Waiting for that maximum every step would stall the host on the
// device (under NCCL): the maximum of step k is read at step k + 1, so a
// multi-rank run stops at most one step later than one rank would.
double Trainer::agreed_elapsed_ms(double elapsed_ms) {
  if (!group_.active()) return elapsed_ms;
  const double agreed = pending_elapsed_ ? pending_elapsed_->get() : 0.0;
  pending_elapsed_ = group_.all_reduce_max_async(elapsed_ms);
  return agreed;
}

// MAX_WALLCLOCK_SECONDS: once the time is up, this step is the last (the
// loop still validates after it).
void Trainer::stop_when_out_of_time(double elapsed_ms) {
  const double cap_ms = tc_.budget_ms();
  if (!stop_after_step_ && cap_ms > 0 && elapsed_ms >= cap_ms) stop_after_step_ = step_;
}

void Trainer::maybe_checkpoint() {
  if (tc_.checkpoint_every <= 0 || step_ % tc_.checkpoint_every != 0) return;
  clock_.pause();  // the clock does not run while the checkpoint is written
  if (group_.master()) save_checkpoint();
  group_.barrier();
  clock_.start();
}

}  // namespace pgolf
