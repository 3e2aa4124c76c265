#include "eval/ttt_params.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <regex>

#include "common/error.h"

namespace pgolf {
namespace {

// LR scale of logical layer `l` (0 when frozen).
double layer_scale(int64_t l, int64_t num_layers, const ParamSelection& s) {
  if (l < s.freeze_blocks) return 0.0;
  const int64_t n = num_layers - s.freeze_blocks;
  const double t = static_cast<double>(l - s.freeze_blocks) / std::max<int64_t>(n - 1, 1);
  return s.block_lr_min + (1.0 - s.block_lr_min) * t;
}

std::optional<int64_t> index_after(const std::string& name, const std::string& prefix) {
  static const std::regex digits("^(\\d+)\\.");
  if (name.rfind(prefix, 0) != 0) return std::nullopt;
  std::smatch m;
  const std::string rest = name.substr(prefix.size());
  if (!std::regex_search(rest, m, digits)) return std::nullopt;
  return std::stoll(m[1].str());
}

double name_group_mult(const std::string& name, const ParamSelection& s) {
  if (name.find(".proj.") != std::string::npos) return s.proj_mult;
  if (name.find(".fc.") != std::string::npos) return s.fc_mult;
  return 1.0;
}

// Per-slice scales of a bank: slice i of `per_layer` slices belongs to layer
// i mod L; `proj_from` is the first slice that is an output projection (Wo).
torch::Tensor bank_scales(const std::string& bank, int64_t slices, const ModelConfig& config,
                          const ParamSelection& s) {
  const int64_t L = config.num_layers;
  std::vector<double> scale(static_cast<size_t>(slices));
  for (int64_t i = 0; i < slices; ++i) {
    const int64_t layer = i % L;
    double mult = 1.0;
    if (bank == "mlp_down_bank" || (bank == "qo_bank" && i >= L)) mult = s.proj_mult;
    if (bank == "mlp_up_bank") mult = s.fc_mult;
    scale[i] = (s.scale_bank_slices ? layer_scale(layer, L, s) : 1.0) * mult;
  }
  return torch::tensor(scale, torch::kDouble).view({slices, 1, 1});
}

}  // namespace

TrainableSet select_trainable(GPT& model, const ParamSelection& s) {
  const ModelConfig& config = model->config();
  const int64_t L = config.num_layers;
  PGOLF_CHECK(s.freeze_blocks < L, "TTT_FREEZE_BLOCKS={} leaves none of the {} blocks to train",
              s.freeze_blocks, L);
  TrainableSet out;
  for (const auto& item : model->named_parameters()) {
    const std::string& name = item.key();
    const torch::Tensor& p = item.value();
    double scale = name_group_mult(name, s);
    torch::Tensor slice_scale;
    if (auto l = index_after(name, "blocks.")) {
      scale *= layer_scale(*l, L, s);
    } else if (auto c = index_after(name, "cores.")) {
      double smallest = std::numeric_limits<double>::infinity();
      for (int64_t layer = 0; layer < L; ++layer) {
        if (config.core_of_layer(layer) == *c)
          smallest = std::min(smallest, layer_scale(layer, L, s));
      }
      scale *= smallest;
    } else if (name.size() > 5 && name.substr(name.size() - 5) == "_bank") {
      slice_scale = bank_scales(name, p.size(0), config, s).to(p.device(), p.scalar_type());
    }
    if (scale == 0.0 || (slice_scale.defined() && slice_scale.max().item<double>() == 0.0)) {
      out.frozen.push_back(p);
      out.frozen_count += p.numel();
      continue;
    }
    TrainableParam t{name, p, slice_scale};
    if (!t.lr_scale.defined() && scale != 1.0) {
      t.lr_scale = torch::tensor(scale, torch::TensorOptions(p.scalar_type()).device(p.device()));
    }
    out.trainable_count += p.numel();
    out.params.push_back(std::move(t));
  }
  return out;
}

FreezeGuard::FreezeGuard(const TrainableSet& set) : frozen_(set.frozen) {
  for (auto& p : frozen_) p.set_requires_grad(false);
}

FreezeGuard::~FreezeGuard() {
  for (auto& p : frozen_) p.set_requires_grad(true);
}

}  // namespace pgolf
