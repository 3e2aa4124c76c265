// What pgolf computes on a GPU is what it computes on the CPU, where it is verified
// (docs/devices.md, "Running on GPUs"):
//
//   CudaModel       every preset (shrunk): loss and every gradient on CUDA equal the CPU's,
//                   in fp32 to round-off and in bf16 compute within bf16 tolerance
//   CudaGolden      the golden tiny model's loss, logits, gradients and Newton-Schulz against
//                   the official script's numbers (../shared/golden), on CUDA
//   CudaOptim       Newton-Schulz in bf16 and fp32, one Muon step and the foreach AdamW step
//                   on CUDA against the CPU
//   CudaKernels     the fused CPU kernels are never taken for CUDA tensors
//   CudaData        the prefetching loader's pinned batches are the plain batches
//   CudaArtifact    an artifact exported from a CUDA model scores the same on CPU and CUDA
//   CudaCheckpoint  a checkpoint of a CUDA run restores the CUDA generator
//
// Every test skips without a CUDA device; the development machine has none, and
// scripts/gpu/check.sh runs them on one (`pgolf_tests --gtest_filter='Cuda*'`).
// fp32 comparisons turn TF32 off first (pgolf never turns it on; LibTorch's
// default is off too), so CUDA's fp32 matmuls are IEEE fp32 like the CPU's.
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "common/fs.h"
#include "common/log.h"
#include "config/presets.h"
#include "data/prefetch_loader.h"
#include "data/tokenizer.h"
#include "eval/val_bpb.h"
#include "export/export.h"
#include "io/safetensors.h"
#include "kernels/fused.h"
#include "model/gpt.h"
#include "model/weights.h"
#include "optim/adamw_step.h"
#include "optim/muon.h"
#include "optim/optimizers.h"
#include "pipeline/run_context.h"
#include "tests/data/position_shards.h"
#include "tests/test_util.h"
#include "train/checkpoint.h"

namespace pgolf {
namespace {

const torch::Device kCuda(torch::kCUDA, 0);

// Batch of the model tests: 4 sequences of 64 tokens.
constexpr int64_t kBatch = 4, kSeqLen = 64;

// fp32 on two devices is one function summed in two orders. The loss and
// every gradient of at least kManyElements elements agree to 1e-5 of the
// tensor's largest value. A gradient of a few elements (q_gain, the
// one-element scales) is a sum over every position that can nearly cancel,
// and round-off relative to such a sum has no bound: a PyTorch emulation of
// these models measured up to 2e-5 (fp32 against fp64) for a one-element
// scale. Those are held to 1e-3, still a thousandth of what a wrong path gives.
constexpr int64_t kManyElements = 64;
constexpr double kFp32Tol = 1e-5, kFp32FewTol = 1e-3;

// bf16 compute (activations and matmul operands in bf16, the reference's
// autocast) against the fp32 CPU reference. No test of the repository bounds
// bf16 gradients, so these come from a PyTorch emulation of the shrunk models
// (5 layers of width 64, B*T = 256, q_gain 5, XSA, fp32 vs bf16): loss within
// 1e-5 relative, the whole gradient within 8e-3 (Frobenius), each tensor of
// >= 64 elements within 5e-2 (Frobenius). Bounds: 5x, 4x and 3x those. A
// few-element gradient can change sign under bf16 (a near-cancelling sum), so
// it is covered by the whole-gradient measure only.
constexpr double kBf16LossTol = 5e-3, kBf16WholeTol = 3e-2, kBf16TensorTol = 0.15;

// CUDA's fp32 matmuls run as TF32 (10-bit mantissa) when this is allowed.
// Nothing in src/ allows it and LibTorch's default is off; said here so that no
// earlier code in the process can have changed it.
void require_ieee_fp32_matmuls() {
  at::globalContext().setAllowTF32CuBLAS(false);
  ASSERT_FALSE(at::globalContext().allowTF32CuBLAS());
}

double max_abs(const torch::Tensor& t) {
  return t.numel() == 0 ? 0.0 : t.abs().max().item<double>();
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return max_abs(a.to(torch::kCPU, torch::kDouble) - b.to(torch::kCPU, torch::kDouble));
}

// ||a - ref||_F / ||ref||_F, in double on the CPU.
double rel_fro(const torch::Tensor& a, const torch::Tensor& ref) {
  const auto r = ref.to(torch::kCPU, torch::kDouble);
  return ((a.to(torch::kCPU, torch::kDouble) - r).norm() / r.norm()).item<double>();
}

// Adds N(0, 0.05^2) noise, drawn on the CPU from `seed`, to every parameter:
// the zero-initialised projections, gates and tables come alive, so every
// path carries gradient (the golden fixtures do the same).
void perturb(GPT& model, uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (auto& p : model->parameters()) {
    p.add_(torch::randn(p.sizes(), generator).to(p.device(), p.scalar_type()) * 0.05);
  }
}

// `name`'s model shrunk as the end-to-end tests shrink the entries
// (tests/e2e/test_train_e2e.cpp, EntryEndToEnd): 5 logical layers of width 64
// with 4 heads over 2 KV heads, the layout and every technique kept, their
// layer lists moved inside the 5 layers; vocabulary and seed the preset's.
Config shrunk_preset(const std::string& name) {
  Config scale = preset("cpu");
  scale.model = testing::two_layer_model(scale.model);  // width 64
  scale.model.num_layers = 5;
  scale.model.num_heads = 4;
  scale.model.num_kv_heads = 2;
  scale.train.train_seq_len = kSeqLen;
  Config c = at_scale_of(preset(name), scale);
  ModelConfig& m = c.model;
  m.xsa_last_n = std::min<int64_t>(m.xsa_last_n, 2);
  if (m.weight_layout == WeightLayout::kCores && m.unique_layers > 0) m.unique_layers = 4;
  if (!m.recur_layers.empty()) m.recur_layers = "1,2";
  m.ve_layers = "3,4";
  if (m.num_loops > 0) {  // #1855's loop and lanes, placed in 5 blocks
    m.loop_start = 1;
    m.loop_end = 2;
  }
  if (m.parallel_start_layer > 0) m.parallel_start_layer = 3;
  m.validate();
  return c;
}

// kBatch x kSeqLen inputs and targets drawn on the CPU from `seed`.
std::pair<torch::Tensor, torch::Tensor> random_batch(int64_t vocab_size, uint64_t seed,
                                                     int64_t seq_len = kSeqLen) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  const auto x = torch::randint(vocab_size, {kBatch, seq_len}, generator, torch::kLong);
  const auto y = torch::randint(vocab_size, {kBatch, seq_len}, generator, torch::kLong);
  return {x, y};
}

// One training-mode forward and backward, copied to the CPU in double.
struct LossAndGrads {
  double loss = 0;
  // named_parameters() order; undefined where a parameter gets no gradient
  // (e.g. layer 0's vrl_alpha: layer 0 has no earlier values to mix).
  std::vector<std::pair<std::string, torch::Tensor>> grads;
};

LossAndGrads loss_and_grads(GPT& model, const torch::Tensor& x, const torch::Tensor& y) {
  const torch::Device device = model->parameters().front().device();
  model->train();
  for (auto& p : model->parameters()) p.mutable_grad() = torch::Tensor();
  const torch::Tensor loss = model->loss(x.to(device), y.to(device));
  loss.backward();
  LossAndGrads out;
  out.loss = loss.item<double>();
  for (const auto& item : model->named_parameters()) {
    const torch::Tensor& g = item.value().grad();
    out.grads.emplace_back(item.key(),
                           g.defined() ? g.to(torch::kCPU, torch::kDouble) : torch::Tensor());
  }
  return out;
}

// Same parameters, and a gradient for the same ones.
void expect_same_parameters(const LossAndGrads& a, const LossAndGrads& b) {
  ASSERT_EQ(a.grads.size(), b.grads.size());
  for (size_t i = 0; i < a.grads.size(); ++i) {
    ASSERT_EQ(a.grads[i].first, b.grads[i].first);
    ASSERT_EQ(a.grads[i].second.defined(), b.grads[i].second.defined()) << a.grads[i].first;
  }
}

void expect_fp32_match(const LossAndGrads& ref, const LossAndGrads& got) {
  EXPECT_LE(std::abs(got.loss - ref.loss), kFp32Tol * std::abs(ref.loss))
      << fmt::format("loss {:.9f} vs {:.9f}", got.loss, ref.loss);
  expect_same_parameters(ref, got);
  for (size_t i = 0; i < ref.grads.size() && i < got.grads.size(); ++i) {
    const auto& [name, a] = ref.grads[i];
    const torch::Tensor& b = got.grads[i].second;
    if (!a.defined() || !b.defined()) continue;
    const double tol = a.numel() >= kManyElements ? kFp32Tol : kFp32FewTol;
    const double err = max_abs(a - b), scale = max_abs(a);
    EXPECT_LE(err, tol * scale) << name << ": max err " << err << ", max |g| " << scale << " ("
                                << err / scale << " of it)";
  }
}

void expect_bf16_close(const LossAndGrads& ref, const LossAndGrads& got) {
  EXPECT_LE(std::abs(got.loss - ref.loss), kBf16LossTol * std::abs(ref.loss))
      << fmt::format("loss {:.6f} vs {:.6f}", got.loss, ref.loss);
  expect_same_parameters(ref, got);
  std::vector<torch::Tensor> all_ref, all_got;
  for (size_t i = 0; i < ref.grads.size() && i < got.grads.size(); ++i) {
    const auto& [name, a] = ref.grads[i];
    const torch::Tensor& b = got.grads[i].second;
    if (!a.defined() || !b.defined()) continue;
    EXPECT_TRUE(torch::isfinite(b).all().item<bool>()) << name;
    all_ref.push_back(a.reshape({-1}));
    all_got.push_back(b.reshape({-1}));
    if (a.numel() < kManyElements || max_abs(a) == 0) continue;
    EXPECT_LE(rel_fro(b, a), kBf16TensorTol) << name;
  }
  ASSERT_FALSE(all_ref.empty());
  EXPECT_LE(rel_fro(torch::cat(all_got), torch::cat(all_ref)), kBf16WholeTol) << "whole gradient";
}

// ---------------------------------------------------------------------------
// CudaModel

class CudaModel : public ::testing::TestWithParam<std::string> {};

// The preset's model placed as a run places it (pipeline/run_context.h
// init_model), perturbed, on the CPU and on CUDA; one batch forward and
// backward on each. The CPU reference runs the plain ATen ops, the
// definition the fused kernels are tested against, which is what CUDA runs.
TEST_P(CudaModel, ForwardAndBackwardMatchTheCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  require_ieee_fp32_matmuls();
  Config config = shrunk_preset(GetParam());
  config.runtime.dtype = ComputeDtype::kAuto;
  GPT cpu = init_model(config, torch::kCPU);
  GPT cuda = init_model(config, kCuda);
  EXPECT_EQ(cpu->compute_dtype(), torch::kFloat);
  EXPECT_EQ(cuda->compute_dtype(), torch::kBFloat16);  // auto: bf16 on CUDA, as the entries train
  {
    // Drawn on the CPU for every device: both start from the same weights.
    const StateDict a = state_dict(cpu), b = state_dict(cuda);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_TRUE(b[i].second.is_cuda()) << b[i].first;
      EXPECT_TRUE(torch::equal(a[i].second, b[i].second.cpu())) << a[i].first;
    }
  }
  perturb(cpu, 17);
  load_state_dict(cuda, state_dict(cpu));
  const auto [x, y] = random_batch(config.model.vocab_size, 23);

  LossAndGrads reference;
  {
    kernels::FusedKernelsScope plain(false);
    reference = loss_and_grads(cpu, x, y);
  }
  {
    SCOPED_TRACE("bf16 compute on CUDA");
    expect_bf16_close(reference, loss_and_grads(cuda, x, y));
  }
  {
    SCOPED_TRACE("fp32 on CUDA");
    cuda->set_compute_dtype(resolve_compute_dtype(ComputeDtype::kFp32, kCuda));
    expect_fp32_match(reference, loss_and_grads(cuda, x, y));
  }
}

INSTANTIATE_TEST_SUITE_P(Cuda, CudaModel, ::testing::ValuesIn(preset_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

// ---------------------------------------------------------------------------
// CudaGolden: tests/model/test_gpt_golden.cpp and tests/optim/test_muon.cpp on
// CUDA, with the same bounds (golden/README.md "Tolerances to expect"): the
// fixtures' fp32-vs-fp64 gaps are about 10x below them, and CUDA's fp32 is
// another fp32 summation order.

std::filesystem::path golden() { return testing::shared_dir() / "golden" / "baseline"; }

TEST(CudaGolden, LossLogitsAndEveryGradientMatchTheReference) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  PGOLF_REQUIRE_SHARED();
  require_ieee_fp32_matmuls();
  GPT model(testing::golden_tiny_config());
  load_state_dict(model, read_safetensors(golden() / "tiny_weights.safetensors"));
  model->to(kCuda);  // fp32 compute: the fixtures are fp32
  const auto inputs = read_safetensors(golden() / "tiny_inputs.safetensors");
  const auto x = find_tensor(inputs, "x").to(kCuda), y = find_tensor(inputs, "y").to(kCuda);
  const auto expected = nlohmann::json::parse(read_file(golden() / "tiny_expected.json"));

  {
    torch::NoGradGuard no_grad;
    const auto logits =
        find_tensor(read_safetensors(golden() / "tiny_logits.safetensors"), "logits");
    EXPECT_LE(max_abs_diff(model->logits(x).reshape({-1, 1024}), logits), 2e-5);
  }
  model->train();
  const auto loss = model->loss(x, y);
  EXPECT_NEAR(loss.item<double>(), expected.at("loss_fp32_exact").get<double>(), 2e-6);
  loss.backward();
  const auto grads = read_safetensors(golden() / "tiny_grads.safetensors");
  auto params = model->named_parameters();
  ASSERT_EQ(grads.size(), params.size());
  for (const auto& [name, g_ref] : grads) {
    const auto g = params[name].grad();
    ASSERT_TRUE(g.defined()) << name;
    ASSERT_TRUE(g.is_cuda()) << name;
    const auto ref = g_ref.to(torch::kDouble);
    const double max_ref = max_abs(ref);
    const auto err = (g.to(torch::kCPU, torch::kDouble) - ref).abs();
    EXPECT_TRUE((err <= 1e-4 * ref.abs() + 2e-5 * max_ref).all().item<bool>())
        << name << ": max err " << max_abs(err) << " (max |g_ref| " << max_ref << ")";
  }
}

TEST(CudaGolden, NewtonSchulzMatchesTheReference) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  PGOLF_REQUIRE_SHARED();
  require_ieee_fp32_matmuls();
  const auto f = read_safetensors(golden() / "muon_ns5.safetensors");
  for (const std::string prefix : {"", "tall_"}) {
    const auto input = find_tensor(f, prefix + "input").to(kCuda);
    const auto ref = find_tensor(f, prefix + "output_fp32");
    EXPECT_LE(max_abs_diff(newton_schulz5(input, 5, torch::kFloat), ref), 1e-5) << prefix;
    const auto bf16 = newton_schulz5(input, 5, torch::kBFloat16);
    EXPECT_EQ(bf16.scalar_type(), torch::kBFloat16);
    EXPECT_LE(rel_fro(bf16, ref), 6e-2) << prefix;
  }
}

// ---------------------------------------------------------------------------
// CudaOptim

// Matrices, tall and wide, and a #1406 bank of matrices.
const std::vector<std::vector<int64_t>> kMuonShapes = {{48, 96}, {96, 48}, {3, 32, 64}};

// Native bf16 GEMMs on CUDA (the CPU emulates them with fp32 kernels): close
// to the fp32 iteration in Frobenius norm, as tests/optim/test_muon.cpp bounds
// it (6e-2; random matrices of these shapes measure 2.5-3.5e-2 on the CPU). The
// fp32 iteration itself equals the CPU's within golden/README.md's 1e-5.
TEST(CudaOptim, NewtonSchulzBf16IsCloseToFp32AndFp32MatchesTheCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  require_ieee_fp32_matmuls();
  auto generator = at::make_generator<at::CPUGeneratorImpl>(3);
  for (const auto& shape : kMuonShapes) {
    const auto G = torch::randn(shape, generator);
    const auto fp32_cpu = newton_schulz5(G, 5, torch::kFloat);
    const auto fp32_cuda = newton_schulz5(G.to(kCuda), 5, torch::kFloat);
    EXPECT_TRUE(fp32_cuda.is_cuda());
    EXPECT_LE(max_abs_diff(fp32_cuda, fp32_cpu), 1e-5) << G.sizes();
    const auto bf16_cuda = newton_schulz5(G.to(kCuda), 5, torch::kBFloat16);
    EXPECT_EQ(bf16_cuda.scalar_type(), torch::kBFloat16);
    EXPECT_TRUE(bf16_cuda.is_cuda());
    EXPECT_LE(rel_fro(bf16_cuda, fp32_cpu), 6e-2) << G.sizes();
  }
}

// Copies of `values` on `device`, as leaf parameters.
std::vector<torch::Tensor> params_on(const std::vector<torch::Tensor>& values,
                                     torch::Device device) {
  std::vector<torch::Tensor> out;
  for (const auto& v : values) out.push_back(v.to(device).clone().requires_grad_(true));
  return out;
}

// One Muon step (fp32 Newton-Schulz, decoupled decay) on the CPU and on CUDA.
// The update passes through bf16 by design, so an fp32 round-off difference
// that crosses a bf16 rounding boundary moves an element by one bf16 step of
// the update (<= 2^-7 |u|, times the LR). golden/README.md's Muon bound says
// the rest: momentum within 1e-6, >= 99% of elements within 1e-6.
TEST(CudaOptim, MuonStepMatchesTheCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  require_ieee_fp32_matmuls();
  auto generator = at::make_generator<at::CPUGeneratorImpl>(4);
  std::vector<torch::Tensor> initial, grads;
  for (const auto& shape : kMuonShapes) {
    initial.push_back(torch::randn(shape, generator));
    grads.push_back(torch::randn(shape, generator));
  }
  MuonOptions options;
  options.ns_dtype = torch::kFloat;
  options.weight_decay = 0.04;
  constexpr double lr = 0.04, momentum = 0.95;
  auto cpu = params_on(initial, torch::kCPU), cuda = params_on(initial, kCuda);
  for (size_t i = 0; i < initial.size(); ++i) {
    cpu[i].mutable_grad() = grads[i].clone();
    cuda[i].mutable_grad() = grads[i].to(kCuda);
  }
  Muon cpu_muon(cpu, options), cuda_muon(cuda, options);
  cpu_muon.step(lr, momentum);
  cuda_muon.step(lr, momentum);
  for (size_t i = 0; i < initial.size(); ++i) {
    SCOPED_TRACE(::testing::Message() << "parameter " << i << " " << initial[i].sizes());
    EXPECT_TRUE(cuda[i].is_cuda());
    EXPECT_TRUE(cuda_muon.momentum_buffers()[i].is_cuda());
    EXPECT_LE(max_abs_diff(cuda_muon.momentum_buffers()[i], cpu_muon.momentum_buffers()[i]), 1e-6);
    const auto p_cpu = cpu[i].detach().to(torch::kDouble);
    const auto p_cuda = cuda[i].detach().to(torch::kCPU, torch::kDouble);
    // The CPU's update u: p = p0 (1 - lr wd) - lr u.
    const auto u = (initial[i].to(torch::kDouble) * (1 - lr * options.weight_decay) - p_cpu) / lr;
    const auto err = (p_cuda - p_cpu).abs();
    EXPECT_TRUE((err <= lr * std::ldexp(1.0, -7) * u.abs() + 1e-6).all().item<bool>())
        << "max err " << max_abs(err);
    EXPECT_GE((err <= 1e-6).to(torch::kDouble).mean().item<double>(), 0.99);
  }
}

// MUON_NS_BF16_VIA_FP32 is a CPU device for bf16 numbers at fp32 speed; on
// CUDA, bf16 GEMMs are native and the switch is ignored: the same step bit for
// bit (one device, the same kernels in the same order).
TEST(CudaOptim, MuonIgnoresTheBf16ViaFp32SwitchOnCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  auto generator = at::make_generator<at::CPUGeneratorImpl>(5);
  std::vector<torch::Tensor> initial, grads;
  for (const auto& shape : kMuonShapes) {
    initial.push_back(torch::randn(shape, generator));
    grads.push_back(torch::randn(shape, generator));
  }
  std::vector<std::vector<torch::Tensor>> results;
  for (const bool via_fp32 : {false, true}) {
    MuonOptions options;
    options.ns_dtype = torch::kBFloat16;
    options.ns_bf16_via_fp32 = via_fp32;
    auto params = params_on(initial, kCuda);
    for (size_t i = 0; i < params.size(); ++i) params[i].mutable_grad() = grads[i].to(kCuda);
    Muon muon(params, options);
    muon.step(0.04, 0.95);
    results.push_back(params);
  }
  for (size_t i = 0; i < initial.size(); ++i) {
    EXPECT_TRUE(torch::equal(results[0][i], results[1][i])) << "parameter " << i;
  }
}

// adamw_step_foreach (what training runs; bit-identical to LibTorch's
// AdamW::step on the CPU, tests/optim/test_adamw_step.cpp) on CUDA: weights
// and moments equal the CPU's to fp32 round-off (a fused multiply-add here or
// there: 1e-6 relative), over steps with a changing LR and a parameter without
// gradient at one step.
TEST(CudaOptim, AdamwForeachStepMatchesTheCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  auto generator = at::make_generator<at::CPUGeneratorImpl>(6);
  std::vector<torch::Tensor> initial;
  for (const std::vector<int64_t>& shape :
       std::vector<std::vector<int64_t>>{{7, 5}, {3}, {2, 3, 4}, {}}) {
    initial.push_back(torch::randn(shape, generator));
  }
  auto cpu = params_on(initial, torch::kCPU), cuda = params_on(initial, kCuda);
  const auto options =
      torch::optim::AdamWOptions(0.03).betas({0.9, 0.99}).eps(1e-8).weight_decay(0.04);
  torch::optim::AdamW cpu_adam(cpu, options), cuda_adam(cuda, options);
  for (int step = 0; step < 4; ++step) {
    for (size_t i = 0; i < initial.size(); ++i) {
      const bool skipped = i == 2 && step == 1;  // no gradient: no update, its state lags
      const auto g = torch::randn(initial[i].sizes(), generator) * (1.0 + step);
      cpu[i].mutable_grad() = skipped ? torch::Tensor() : g;
      cuda[i].mutable_grad() = skipped ? torch::Tensor() : g.to(kCuda);
    }
    for (auto* adam : {&cpu_adam, &cuda_adam}) {
      static_cast<torch::optim::AdamWOptions&>(adam->param_groups()[0].options())
          .lr(0.03 / (1 + step));
    }
    adamw_step_foreach(cpu_adam);
    adamw_step_foreach(cuda_adam);
    for (size_t i = 0; i < initial.size(); ++i) {
      SCOPED_TRACE(fmt::format("step {} parameter {}", step, i));
      const auto close = [](const torch::Tensor& got, const torch::Tensor& ref) {
        EXPECT_TRUE(got.is_cuda());
        EXPECT_TRUE(torch::allclose(got.cpu(), ref, /*rtol=*/1e-6, /*atol=*/1e-7))
            << "max diff " << max_abs_diff(got, ref);
      };
      close(cuda[i].detach(), cpu[i].detach());
      const auto& a = static_cast<torch::optim::AdamWParamState&>(
          *cpu_adam.state().at(cpu[i].unsafeGetTensorImpl()));
      const auto& b = static_cast<torch::optim::AdamWParamState&>(
          *cuda_adam.state().at(cuda[i].unsafeGetTensorImpl()));
      EXPECT_EQ(a.step(), b.step());
      close(b.exp_avg(), a.exp_avg());
      close(b.exp_avg_sq(), a.exp_avg_sq());
    }
  }
}

// ---------------------------------------------------------------------------
// CudaKernels: the fused kernels (kernels/fused.h) take CPU float/double
// tensors only; every caller asks kernels::applies() first. The kernels keep
// no call counter, so the dispatch predicates are what is checked, and a
// CUDA model's results with the switch on and off.

TEST(CudaKernels, DispatchPredicatesRefuseCudaTensors) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  kernels::FusedKernelsScope on(true);
  ASSERT_TRUE(kernels::applies(torch::zeros({2, 3})));  // a CPU float tensor would take them
  for (const auto dtype : {torch::kFloat, torch::kDouble, torch::kBFloat16}) {
    const auto t = torch::zeros({2, 3}, torch::TensorOptions().dtype(dtype).device(kCuda));
    EXPECT_FALSE(kernels::supports(t)) << dtype;
    EXPECT_FALSE(kernels::applies(t)) << dtype;
  }
}

bool same_bits(const LossAndGrads& a, const LossAndGrads& b) {
  if (a.loss != b.loss || a.grads.size() != b.grads.size()) return false;
  for (size_t i = 0; i < a.grads.size(); ++i) {
    const auto &ga = a.grads[i].second, &gb = b.grads[i].second;
    if (ga.defined() != gb.defined() || (ga.defined() && !torch::equal(ga, gb))) return false;
  }
  return true;
}

// An all-options model in each layout (RMSNorm, the blends, leaky relu^2,
// partial RoPE with NTK active at 32 tokens, attention with XSA and gates,
// the softcapped cross-entropy: every fused kernel's call site), on CUDA in
// fp32: loss, gradients and the scoring path's tail losses with the kernels
// switched on equal those with them off -- bit for bit when CUDA repeats
// itself bit for bit (checked first), else within fp32 round-off.
TEST(CudaKernels, SwitchingThemOnChangesNothingOnCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  require_ieee_fp32_matmuls();
  for (const std::string layout : {"blocks", "cores", "banks"}) {
    SCOPED_TRACE(layout);
    const ModelConfig config = testing::tiny_entry_config(layout);
    torch::manual_seed(11);
    GPT model(config);
    perturb(model, 12);
    model->to(kCuda);
    const auto batch = random_batch(config.vocab_size, 13, /*seq_len=*/32);
    const auto x = batch.first.to(kCuda), y = batch.second.to(kCuda);
    const auto run = [&](bool fused) {
      kernels::FusedKernelsScope scope(fused);
      LossAndGrads r = loss_and_grads(model, x, y);
      torch::NoGradGuard no_grad;
      return std::make_pair(r, model->token_losses(x, y, /*from=*/8).cpu());
    };
    const auto [off, off_tail] = run(false);
    const auto [again, again_tail] = run(false);
    const auto [on, on_tail] = run(true);
    if (same_bits(off, again) && torch::equal(off_tail, again_tail)) {
      EXPECT_TRUE(same_bits(off, on));
      EXPECT_TRUE(torch::equal(off_tail, on_tail));
    } else {
      expect_fp32_match(off, on);
      EXPECT_LE(max_abs_diff(on_tail, off_tail), kFp32Tol * max_abs(off_tail));
    }
  }
}

// ---------------------------------------------------------------------------
// CudaData: with pin_memory (a CUDA run) the prefetching loader hands out
// page-locked batches, so their host-to-device copy can be asynchronous, with
// exactly the tokens and positions of the unpinned loader.

TEST(CudaData, PrefetchingLoaderPinsTheSameBatches) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  testing::ScratchDir dir;
  // Odd shard sizes: batches straddle the boundaries and the wrap-around.
  const std::string glob = testing::write_position_shards(dir, {37, 50, 23});
  const auto plain = [&] { return std::make_unique<DistributedTokenLoader>(glob, 1024, 0, 1); };
  const PrefetchingTokenLoader::Shape shape{8, 4, 1};
  PrefetchingTokenLoader pinned(plain(), shape, /*pin_memory=*/true);
  PrefetchingTokenLoader pageable(plain(), shape, /*pin_memory=*/false);
  for (int call = 0; call < 30; ++call) {
    SCOPED_TRACE(fmt::format("call {}", call));
    const TokenBatch a = pinned.next_batch(), b = pageable.next_batch();
    EXPECT_TRUE(a.inputs.is_pinned());
    EXPECT_TRUE(a.targets.is_pinned());
    EXPECT_FALSE(b.inputs.is_pinned());
    EXPECT_TRUE(torch::equal(a.inputs, b.inputs));
    EXPECT_TRUE(torch::equal(a.targets, b.targets));
    EXPECT_EQ(pinned.position(), pageable.position());
    // What pinning is for: the asynchronous copy delivers the same tokens.
    const auto on_device = a.inputs.to(kCuda, a.inputs.scalar_type(), /*non_blocking=*/true);
    EXPECT_TRUE(torch::equal(on_device.cpu(), b.inputs));
  }
}

// ---------------------------------------------------------------------------
// CudaArtifact: the export of a model on CUDA (export/export.h, as `pgolf
// train` runs it: int8 + zlib for the tiny cpu-preset model), read back as
// `pgolf eval` reads it, scores the same val_bpb on the CPU and on CUDA, and
// the same as the export's own round-trip validation on CUDA. fp32 on both
// devices: per-token losses differ by round-off and the batch means by
// summation order, about 2e-7 in val_bpb; 1e-6 is the bound.

TEST(CudaArtifact, ScoresTheSameOnCpuAndCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  PGOLF_REQUIRE_SHARED();
  require_ieee_fp32_matmuls();
  testing::ScratchDir scratch;
  Config config = testing::trained_tiny_config();  // 2 layers of width 64, 16,384 val tokens
  config.runtime.dtype = ComputeDtype::kFp32;
  GPT model = init_model(config, kCuda);
  perturb(model, 31);  // non-zero projections for the quantizer to store
  const torch::Tensor stream = validation_stream(config);
  const ByteLuts luts =
      build_byte_luts(Tokenizer::load(config.data.tokenizer_path), config.model.vocab_size);
  ValOptions options;
  options.seq_len = config.train.train_seq_len;
  options.batch_seqs = 32;

  RunLog log(scratch / "export.log", /*master=*/true);
  ExportContext ctx;
  ctx.model = model;
  ctx.config = &config;
  ctx.run_dir = scratch.path();
  ctx.log = &log;
  ctx.validate = [&] { return evaluate_val(ctx.model, stream, luts, options); };
  ctx.pre_export = ctx.validate();
  const ExportResult exported = export_and_validate(ctx);
  ASSERT_TRUE(std::filesystem::exists(exported.artifact_path));

  const StoredModel stored = read_artifact_model(exported.artifact_path);
  const auto score_on = [&](torch::Device device) {
    GPT m(config.model);
    load_weights(m, stored.weights);
    m->to(device);
    m->set_compute_dtype(torch::kFloat);
    return evaluate_val(m, stream, luts, options);
  };
  const ValResult cpu = score_on(torch::kCPU), cuda = score_on(kCuda);
  const std::string scores =
      fmt::format("val_bpb cpu:{:.8f} cuda:{:.8f} export's round trip (cuda):{:.8f}", cpu.val_bpb,
                  cuda.val_bpb, exported.roundtrip.val_bpb);
  std::printf("%s\n", scores.c_str());
  SCOPED_TRACE(scores);
  EXPECT_EQ(cpu.token_count, 16384);
  EXPECT_EQ(cuda.token_count, cpu.token_count);
  EXPECT_DOUBLE_EQ(cuda.byte_count, cpu.byte_count);  // integer counts: exact
  EXPECT_LT(std::abs(cuda.val_bpb - cpu.val_bpb), 1e-6);
  EXPECT_LT(std::abs(cuda.val_loss - cpu.val_loss), 1e-6);
  EXPECT_LT(std::abs(exported.roundtrip.val_bpb - cuda.val_bpb), 1e-6);
}

// ---------------------------------------------------------------------------
// CudaCheckpoint: a checkpoint of a model on CUDA holds the CUDA generator's
// state ("rng.cuda", train/checkpoint.cpp) as well as the CPU's, and restoring
// it makes the GPU repeat the draws it made after the save. The weights and
// the optimizer state come back, on the GPU.

torch::Tensor cuda_generator_state() {
  at::Generator generator = at::globalContext().defaultGenerator(kCuda);
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get_state();
}

TEST(CudaCheckpoint, RestoresTheCudaGenerator) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  testing::ScratchDir scratch;
  Config config = preset("cpu");
  config.model = testing::two_layer_model(config.model, 32);
  GPT model = init_model(config, kCuda);
  Optimizers optimizers(model, config.train);
  optimizers.set_lr_scale(1.0);
  const auto batch = random_batch(config.model.vocab_size, 41);
  const auto x = batch.first.to(kCuda), y = batch.second.to(kCuda);
  const auto train_step = [&] {
    optimizers.zero_grad();
    model->loss(x, y).backward();
    optimizers.step();
  };
  train_step();  // AdamW moments and Muon momentum exist, on the GPU

  torch::rand({16}, kCuda);  // the generator has moved from its seed
  const torch::Tensor state_at_save = cuda_generator_state();
  std::vector<torch::Tensor> weights_at_save;
  for (const auto& p : model->parameters()) weights_at_save.push_back(p.detach().cpu());
  const auto path = scratch / kCheckpointFile;
  const CheckpointParts parts{&model, &optimizers, nullptr, nullptr};
  TrainingProgress progress;
  progress.step = 1;
  save_checkpoint(path, config, parts, progress);
  const auto draws_after_save = torch::rand({1000}, kCuda);

  const auto saved = read_safetensors(path);
  ASSERT_TRUE(has_tensor(saved, "rng.cuda"));
  EXPECT_TRUE(torch::equal(find_tensor(saved, "rng.cuda"), state_at_save));

  // The run goes on: another step, more draws.
  train_step();
  torch::rand({1000}, kCuda);
  EXPECT_FALSE(torch::equal(cuda_generator_state(), state_at_save));

  EXPECT_EQ(load_checkpoint(path, config, parts).step, 1);
  EXPECT_TRUE(torch::equal(cuda_generator_state(), state_at_save));
  EXPECT_TRUE(torch::equal(torch::rand({1000}, kCuda), draws_after_save));
  const auto params = model->parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_TRUE(params[i].is_cuda());
    EXPECT_TRUE(torch::equal(params[i].detach().cpu(), weights_at_save[i])) << "parameter " << i;
  }
  for (const auto& buffer : optimizers.muon().momentum_buffers()) {
    if (buffer.defined()) {
      EXPECT_TRUE(buffer.is_cuda());
    }
  }
  for (auto* adam : optimizers.adams()) {
    for (const auto& p : adam->param_groups().front().params()) {
      const auto& state =
          static_cast<torch::optim::AdamWParamState&>(*adam->state().at(p.unsafeGetTensorImpl()));
      EXPECT_TRUE(state.exp_avg().is_cuda());
      EXPECT_TRUE(state.exp_avg_sq().is_cuda());
    }
  }
}

}  // namespace
}  // namespace pgolf
