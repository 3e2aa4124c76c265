#include "eval/val_adapt.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <numbers>

#include "common/error.h"
#include "dist/process_group.h"
#include "eval/ttt_optimizer.h"
#include "eval/ttt_params.h"
#include "eval/windows.h"

namespace pgolf {
namespace {

constexpr int64_t kBatchSeqs = 32;
constexpr double kGradClip = 1.0;

ParamSelection selection_for(ValAdapt mode, const TttConfig& ttt) {
  ParamSelection s;
  if (mode == ValAdapt::kPrequant) {
    s.block_lr_min = 0.3;
    s.scale_bank_slices = false;  // #1406: the banks stay at the full LR (§5.6)
  } else {
    s.proj_mult = ttt.proj_lr_mult;
    s.fc_mult = ttt.fc_lr_mult;
  }
  return s;
}

// prequant: each parameter's LR at epoch e goes from lr*s towards 0.1*lr,
// PyTorch's CosineAnnealingLR(T_max=E, eta_min=0.1 lr) stepped per epoch; the
// floor is absolute, so the scale s' = lr(e)/lr is recomputed per parameter.
void set_epoch_scales(std::vector<TrainableParam>& params, const std::vector<torch::Tensor>& base,
                      int64_t e, int64_t epochs) {
  const double eta_min_scale = 0.1;  // eta_min / lr
  const double f = 0.5 * (1 + std::cos(std::numbers::pi * e / epochs));
  for (size_t i = 0; i < params.size(); ++i) {
    auto& p = params[i];
    auto s =
        base[i].defined()
            ? base[i]
            : torch::ones({}, torch::TensorOptions(p.value.scalar_type()).device(p.value.device()));
    p.lr_scale = eta_min_scale + (s - eta_min_scale) * f;
  }
}

}  // namespace

nlohmann::json ValAdaptResult::to_json() const {
  return {{"mode", name_of(mode)},
          {"epochs", epochs},
          {"steps", steps},
          {"seconds", seconds},
          {"epoch_losses", epoch_losses},
          {"non_compliant", non_compliant_reason(mode)},
          {"legality", legality.to_json()}};
}

std::string non_compliant_reason(ValAdapt mode) {
  if (mode == ValAdapt::kPrequant) {
    return "VAL_ADAPT=prequant (#1406 dTTT) trains on every validation token for several "
           "epochs before any of them is scored";
  }
  if (mode == ValAdapt::kPostquant) {
    return "VAL_ADAPT=postquant (#562) fine-tunes on the whole validation split before "
           "scoring it";
  }
  return "";
}

ValAdaptResult adapt_on_validation(GPT& model, const torch::Tensor& stream, const TttConfig& ttt,
                                   int64_t L, ProcessGroup* group,
                                   const std::function<void(const std::string&)>& print) {
  const ValAdapt mode = ttt.val_adapt;
  PGOLF_CHECK(mode != ValAdapt::kNone, "VAL_ADAPT=none: nothing to adapt");
  PGOLF_CHECK(ttt.allow_non_compliant, "{}; it needs ALLOW_NON_COMPLIANT=1",
              non_compliant_reason(mode));
  const auto start = std::chrono::steady_clock::now();
  const int64_t rank = group ? group->rank() : 0, world = group ? group->world_size() : 1;
  auto say = [&](const std::string& line) {
    if (print && rank == 0) print(line);
  };
  const auto tokens = stream.to(torch::kCPU, torch::kLong).contiguous();
  const int64_t n_seq = (tokens.numel() - 1) / L;
  PGOLF_CHECK(n_seq > 0, "the validation stream is shorter than one sequence of {}", L);
  const Range mine = rank_share(n_seq, rank, world);
  const int64_t per_epoch = ceil_div(ceil_div(n_seq, world), kBatchSeqs);
  const int64_t epochs = ttt.val_adapt_epochs, total = epochs * per_epoch;
  const auto device = model->parameters().front().device();

  TrainableSet trainable = select_trainable(model, selection_for(mode, ttt));
  TttUpdateOptions update;
  update.rule = TttMode::kAdamW;
  TttOptimizer optimizer(trainable.params, update);
  std::vector<torch::Tensor> base_scale;
  for (const auto& p : optimizer.params()) base_scale.push_back(p.lr_scale);
  LegalityAudit audit(tokens.numel(), tokens.numel());
  const std::string tag = mode == ValAdapt::kPrequant ? "dttt" : "ttt";
  say(fmt::format("WARNING: NON-COMPLIANT: {}", non_compliant_reason(mode)));
  say(fmt::format("{}:start lr={} epochs={} sequences={} params={}", tag, ttt.val_adapt_lr, epochs,
                  n_seq, trainable.trainable_count));

  ValAdaptResult result;
  result.mode = mode;
  result.epochs = epochs;
  model->train();
  for (int64_t e = 0; e < epochs; ++e) {
    if (mode == ValAdapt::kPrequant) {
      set_epoch_scales(optimizer.mutable_params(), base_scale, e, epochs);
    }
    double loss_sum = 0, tokens_seen = 0;  // this rank's sum of loss x tokens, tokens
    for (int64_t k = 0; k < per_epoch; ++k) {
      const int64_t k0 = std::min(mine.begin + k * kBatchSeqs, mine.end);
      const int64_t k1 = std::min(k0 + kBatchSeqs, mine.end);
      optimizer.zero_grad();
      if (k1 > k0) {
        audit.used_for_update(k0 * L, k1 * L);
        auto batch = tokens.slice(0, k0 * L, k1 * L + 1).to(device);
        auto x = batch.slice(0, 0, -1).view({-1, L});
        auto y = batch.slice(0, 1).view({-1, L});
        auto loss = model->loss(x, y);
        loss.backward();
        loss_sum += loss.item<double>() * static_cast<double>(y.numel());
        tokens_seen += static_cast<double>(y.numel());
      }
      const double lr =
          mode == ValAdapt::kPrequant
              ? ttt.val_adapt_lr
              : ttt.val_adapt_lr * 0.5 *
                    (1 + std::cos(std::numbers::pi * result.steps / static_cast<double>(total)));
      optimizer.averaged_step(lr, group, kGradClip);
      ++result.steps;
    }
    auto sums = torch::tensor({loss_sum, tokens_seen}, torch::kDouble);
    if (group) group->all_reduce_sum(sums);
    const double mean = sums[0].item<double>() / std::max(sums[1].item<double>(), 1.0);
    result.epoch_losses.push_back(mean);
    say(fmt::format(
        "{}:epoch {}/{} loss:{:.4f} time:{:.1f}s", tag, e + 1, epochs, mean,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()));
  }
  optimizer.zero_grad();
  model->eval();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.legality = audit.report();
  say(fmt::format("{}:done elapsed={:.1f}s", tag, result.seconds));
  return result;
}

}  // namespace pgolf
