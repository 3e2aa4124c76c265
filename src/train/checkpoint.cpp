#include "train/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <mutex>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/fs.h"
#include "config/options.h"
#include "io/safetensors.h"

namespace pgolf {
namespace {

std::string key(const std::string& group, size_t index, const std::string& what) {
  return fmt::format("{}.{}.{}", group, index, what);
}

torch::Tensor to_cpu(const torch::Tensor& t) { return t.detach().to(torch::kCPU).contiguous(); }

torch::Device model_device(const CheckpointParts& parts) {
  return (*parts.model)->parameters().front().device();
}

// Test hook for the crash test: PGOLF_FAULT_CHECKPOINT_WRITE=N makes the N-th
// checkpoint write of this process die with SIGKILL half-way through writing
// its temporary file, exactly as a kill -9 at that moment would.
void maybe_die_mid_write(const std::filesystem::path& path, const std::string& bytes) {
  static int writes = 0;
  ++writes;
  const char* fault = std::getenv("PGOLF_FAULT_CHECKPOINT_WRITE");
  if (!fault || std::atoi(fault) != writes) return;
  const auto tmp = path.string() + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) {
    [[maybe_unused]] auto n = ::write(fd, bytes.data(), bytes.size() / 2);
    ::close(fd);
  }
  std::raise(SIGKILL);
}

}  // namespace

std::string ConfigMismatch::describe() const {
  return fmt::format("{} (run: {}, now: {})", env, run_value, now_value);
}

std::vector<ConfigMismatch> resume_mismatches(const Config& stored, const Config& now) {
  Config a = stored, b = now;
  const auto ta = config_options(a), tb = config_options(b);
  std::vector<ConfigMismatch> out;
  for (size_t i = 0; i < ta.size(); ++i) {
    // Only what shapes the training trajectory must match: model, data, train.
    if (ta[i].group != "model" && ta[i].group != "data" && ta[i].group != "train") continue;
    if (ta[i].get() != tb[i].get()) {
      out.push_back({ta[i].key, ta[i].env, ta[i].get(), tb[i].get()});
    }
  }
  return out;
}

void save_checkpoint(const std::filesystem::path& path, const Config& config,
                     const CheckpointParts& parts, const TrainingProgress& progress) {
  StateDict tensors;
  for (const auto& item : (*parts.model)->named_parameters()) {
    tensors.emplace_back("model." + item.key(), to_cpu(item.value()));
  }
  nlohmann::json adam_steps = nlohmann::json::array();
  const auto adams = parts.optimizers->adams();
  for (size_t g = 0; g < adams.size(); ++g) {
    const auto& params = adams[g]->param_groups().front().params();
    nlohmann::json steps = nlohmann::json::array();
    for (size_t i = 0; i < params.size(); ++i) {
      auto it = adams[g]->state().find(params[i].unsafeGetTensorImpl());
      if (it == adams[g]->state().end()) {
        steps.push_back(0);
        continue;
      }
      const auto& st = static_cast<const torch::optim::AdamWParamState&>(*it->second);
      steps.push_back(st.step());
      tensors.emplace_back(key(fmt::format("adam{}", g), i, "exp_avg"), to_cpu(st.exp_avg()));
      tensors.emplace_back(key(fmt::format("adam{}", g), i, "exp_avg_sq"), to_cpu(st.exp_avg_sq()));
    }
    adam_steps.push_back(steps);
  }
  const auto& buffers = parts.optimizers->muon().momentum_buffers();
  for (size_t i = 0; i < buffers.size(); ++i) {
    if (buffers[i].defined()) tensors.emplace_back(key("muon", i, "momentum"), to_cpu(buffers[i]));
  }
  if (parts.ema) {
    for (size_t i = 0; i < parts.ema->shadow().size(); ++i)
      tensors.emplace_back(key("ema", i, "shadow"), to_cpu(parts.ema->shadow()[i]));
  }
  if (parts.swa) {
    for (size_t i = 0; i < parts.swa->sum().size(); ++i)
      tensors.emplace_back(key("swa", i, "sum"), to_cpu(parts.swa->sum()[i]));
  }
  {
    at::Generator generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    tensors.emplace_back("rng.cpu", generator.get_state());
  }
  if (const torch::Device device = model_device(parts); device.is_cuda()) {
    // Dropout-free models draw nothing on the GPU today; saved anyway, so a
    // resumed run continues exactly whatever it samples there.
    at::Generator generator = at::globalContext().defaultGenerator(device);
    std::lock_guard<std::mutex> lock(generator.mutex());
    tensors.emplace_back("rng.cuda", generator.get_state());
  }

  nlohmann::json meta = {{"step", progress.step},
                         {"training_time_ms", progress.training_time_ms},
                         {"data_file", progress.data.file_index},
                         {"data_offset", progress.data.offset},
                         {"qat_on", progress.qat_on},
                         {"looping", progress.looping},
                         {"adam_steps", adam_steps},
                         {"swa_count", parts.swa ? parts.swa->count() : 0}};
  if (progress.stop_after_step) meta["stop_after_step"] = *progress.stop_after_step;
  const std::string bytes = safetensors_bytes(
      tensors, {{"pgolf_checkpoint", meta.dump()}, {"pgolf_config", to_json(config).dump()}});
  maybe_die_mid_write(path, bytes);
  write_file_atomic(path, bytes);
}

TrainingProgress load_checkpoint(const std::filesystem::path& path, const Config& config,
                                 const CheckpointParts& parts) {
  SafetensorsMetadata metadata;
  const StateDict tensors = read_safetensors(path, &metadata);
  PGOLF_CHECK(metadata.count("pgolf_checkpoint") && metadata.count("pgolf_config"),
              "{}: not a pgolf checkpoint", path.string());
  const auto mismatches = resume_mismatches(
      config_from_json(nlohmann::json::parse(metadata.at("pgolf_config"))), config);
  PGOLF_CHECK(mismatches.empty(),
              "{}: the run was trained with a different configuration; it cannot resume with "
              "this one: {}",
              path.string(), mismatches.front().describe());
  const auto meta = nlohmann::json::parse(metadata.at("pgolf_checkpoint"));
  auto tensor = [&](const std::string& name) -> const torch::Tensor& {
    return find_tensor(tensors, name);
  };

  torch::NoGradGuard no_grad;
  for (auto& item : (*parts.model)->named_parameters()) {
    item.value().copy_(tensor("model." + item.key()));
  }
  const auto adams = parts.optimizers->adams();
  for (size_t g = 0; g < adams.size(); ++g) {
    const auto& params = adams[g]->param_groups().front().params();
    const auto& steps = meta.at("adam_steps").at(g);
    for (size_t i = 0; i < params.size(); ++i) {
      const int64_t step = steps.at(i).get<int64_t>();
      if (step == 0) continue;
      auto st = std::make_unique<torch::optim::AdamWParamState>();
      st->step(step);
      const auto prefix = fmt::format("adam{}", g);
      st->exp_avg(tensor(key(prefix, i, "exp_avg")).to(params[i].device()).clone());
      st->exp_avg_sq(tensor(key(prefix, i, "exp_avg_sq")).to(params[i].device()).clone());
      adams[g]->state()[params[i].unsafeGetTensorImpl()] = std::move(st);
    }
  }
  auto& buffers = parts.optimizers->muon().momentum_buffers();
  const auto& muon_params = parts.optimizers->muon().params();
  for (size_t i = 0; i < buffers.size(); ++i) {
    const auto name = key("muon", i, "momentum");
    buffers[i] = has_tensor(tensors, name) ? tensor(name).to(muon_params[i].device()).clone()
                                           : torch::Tensor();
  }
  if (parts.ema) {
    for (size_t i = 0; i < parts.ema->shadow().size(); ++i)
      parts.ema->shadow()[i].copy_(tensor(key("ema", i, "shadow")));
  }
  if (parts.swa) {
    const int64_t count = meta.at("swa_count").get<int64_t>();
    auto& sum = parts.swa->sum();
    sum.clear();
    if (count > 0) {
      const auto params = (*parts.model)->parameters();
      for (size_t i = 0; i < params.size(); ++i)
        sum.push_back(tensor(key("swa", i, "sum")).to(params[i].device()).clone());
    }
    parts.swa->set_count(count);
  }
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  {
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(tensor("rng.cpu"));
  }
  const torch::Device device = model_device(parts);
  const bool saved_on_cuda = std::any_of(tensors.begin(), tensors.end(),
                                         [](const auto& t) { return t.first == "rng.cuda"; });
  if (device.is_cuda() && saved_on_cuda) {
    at::Generator cuda_generator = at::globalContext().defaultGenerator(device);
    std::lock_guard<std::mutex> lock(cuda_generator.mutex());
    cuda_generator.set_state(tensor("rng.cuda"));
  }

  TrainingProgress progress;
  progress.step = meta.at("step").get<int64_t>();
  progress.training_time_ms = meta.at("training_time_ms").get<double>();
  progress.data = {meta.at("data_file").get<int64_t>(), meta.at("data_offset").get<int64_t>()};
  progress.qat_on = meta.at("qat_on").get<bool>();
  // Checkpoints from before the loop existed have no entry: never looped.
  progress.looping = meta.value("looping", false);
  if (meta.contains("stop_after_step"))
    progress.stop_after_step = meta.at("stop_after_step").get<int64_t>();
  return progress;
}

}  // namespace pgolf
