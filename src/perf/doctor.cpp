#include "perf/doctor.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <fmt/format.h>
#include <torch/cuda.h>
#if __has_include(<torch/headeronly/version.h>)
#include <torch/headeronly/version.h>
#else
#include <torch/version.h>
#endif

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "common/host_memory.h"
#include "kernels/fused.h"
#include "perf/gemm_peak.h"

namespace pgolf {
namespace {

std::string yes_no(bool b) { return b ? "yes" : "no"; }

std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v ? v : fallback;
}

// The value after `prefix` on the first line of `text` that contains it.
std::string find_after(const std::string& text, const std::string& prefix) {
  const auto at = text.find(prefix);
  if (at == std::string::npos) return "";
  const auto start = at + prefix.size();
  auto end = text.find_first_of("\n,", start);
  std::string v = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
  v.erase(0, v.find_first_not_of(" \t:"));
  return v;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) return find_after(line, "model name");
  }
  return "unknown";
}

std::set<std::string> cpu_flags() {
  std::ifstream in("/proc/cpuinfo");
  std::set<std::string> flags;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    for (std::string w; words >> w;) flags.insert(w);
    break;
  }
  return flags;
}

// The vector ISA the kernels can use: what decides fp32 and bf16 GEMM speed.
std::string simd_summary(const std::set<std::string>& flags) {
  std::string out;
  for (const char* f : {"avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_bf16",
                        "amx_bf16", "amx_tile"}) {
    if (!flags.count(f)) continue;
    if (!out.empty()) out += ' ';
    out += f;
  }
  return out.empty() ? "none of avx2/avx512/amx" : out;
}

// at::_fused_sdp_choice's answer: the value of ATen's SDPBackend enum (its
// namespace moved between LibTorch versions; the values did not).
std::string sdp_backend_name(int64_t choice) {
  switch (choice) {
    case 0:
      return "math (unfused: materialises the T x T scores)";
    case 1:
      return "flash_attention (fused)";
    case 2:
      return "efficient_attention (fused)";
    case 3:
      return "cudnn_attention (fused)";
    case 4:
      return "overrideable";
    default:
      return "none";
  }
}

// What scaled_dot_product_attention picks for pgolf's call: causal, GQA
// (8 query heads over 4 KV heads, head dim 64, as the baseline); `masked`:
// with an explicit boolean mask instead (document-bounded attention), which
// the flash kernel does not take.
std::string sdp_choice(torch::Device device, torch::ScalarType dtype, bool masked = false) {
  const auto opts = torch::TensorOptions().device(device).dtype(dtype);
  auto q = torch::randn({1, 8, 256, 64}, opts);
  auto kv = torch::randn({1, 4, 256, 64}, opts);
  std::optional<torch::Tensor> mask;
  if (masked) mask = torch::ones({256, 256}, opts.dtype(torch::kBool)).tril();
  return sdp_backend_name(at::_fused_sdp_choice(q, kv, kv, mask, 0.0, /*is_causal=*/!masked,
                                                std::nullopt, /*enable_gqa=*/true));
}

void add_devices(DoctorReport& r) {
  r.emplace_back("cpu_model", cpu_model());
  r.emplace_back("cpu_cores", std::to_string(std::thread::hardware_concurrency()));
  const auto flags = cpu_flags();
  r.emplace_back("cpu_simd", simd_summary(flags));
  r.emplace_back("cuda_devices", std::to_string(torch::cuda::device_count()));
}

void add_build(DoctorReport& r, const std::string& config) {
  r.emplace_back("libtorch_version", fmt::format("{}.{}.{}", TORCH_VERSION_MAJOR,
                                                 TORCH_VERSION_MINOR, TORCH_VERSION_PATCH));
  long cudart = 0;
  bool cuda_built = false;
  try {  // the default (CPU-only) hooks throw: LibTorch has no ATen_cuda
    cudart = at::detail::getCUDAHooks().versionCUDART();
    cuda_built = true;
  } catch (const c10::Error&) {
  }
  r.emplace_back("libtorch_cuda_built", yes_no(cuda_built));
  r.emplace_back("cuda_runtime_version",
                 cuda_built ? fmt::format("{}.{}", cudart / 1000, (cudart % 1000) / 10) : "n/a");
  const std::string capability = find_after(config, "CPU capability usage");
  r.emplace_back("aten_cpu_capability", capability.empty() ? "unknown" : capability);
}

void add_threads(DoctorReport& r) {
  const std::string info = at::get_parallel_info();
  r.emplace_back("threads_intra_op", std::to_string(at::get_num_threads()));
  r.emplace_back("threads_inter_op", std::to_string(at::get_num_interop_threads()));
  r.emplace_back("parallel_backend", find_after(info, "ATen parallel backend"));
  const std::string omp = find_after(info, "omp_get_max_threads()");
  r.emplace_back("omp_max_threads", omp.empty() ? "n/a" : omp);
  const std::string mkl = find_after(info, "mkl_get_max_threads()");
  r.emplace_back("mkl_max_threads", mkl.empty() ? "n/a" : mkl);
  r.emplace_back("env_OMP_NUM_THREADS", env_or("OMP_NUM_THREADS", "not set"));
  r.emplace_back("env_MKL_NUM_THREADS", env_or("MKL_NUM_THREADS", "not set"));
  r.emplace_back("env_PGOLF_THREADS", env_or("PGOLF_THREADS", "not set"));
  r.emplace_back("flush_denormal", "yes (configure_threads)");
  r.emplace_back("host_memory", host_memory_policy());
}

void add_backends(DoctorReport& r, const std::string& config) {
  const std::string blas = find_after(config, "BLAS_INFO=");
  r.emplace_back("blas", blas.empty() ? "none" : blas);
  r.emplace_back("mkl", yes_no(at::hasMKL()));
  r.emplace_back("mkldnn", yes_no(at::hasMKLDNN()));
  r.emplace_back("openmp", yes_no(at::hasOpenMP()));
  // ATen's CPU matmul dispatch: fp32 goes to the BLAS (sgemm); bf16 goes to
  // oneDNN only when it may use it (mkldnn_bf16_device_check: AVX-512
  // BW/VL/DQ), else to ATen's own scalar-ish kernel, which is very slow.
  r.emplace_back("gemm_fp32_cpu", blas.empty() ? "ATen gemm" : blas + " sgemm");
  const auto flags = cpu_flags();
  const bool onednn_bf16 = at::hasMKLDNN() && flags.count("avx512bw") && flags.count("avx512vl") &&
                           flags.count("avx512dq");
  r.emplace_back("gemm_bf16_cpu", onednn_bf16
                                      ? "oneDNN (mkldnn_bf16_gemm)"
                                      : "ATen fallback kernel (no AVX-512 for oneDNN bf16)");
  r.emplace_back("fused_cpu_kernels",  // kernels/fused.h
                 kernels::fused_enabled()
                     ? "on (RMSNorm, RoPE, residual blends, relu^2, softcap CE, causal attention)"
                     : "off (PGOLF_FUSED_KERNELS=0)");
  // Which attention pgolf's fp32 CPU step runs (model/attention.cpp).
  r.emplace_back("attention_cpu_fp32", kernels::fused_enabled()
                                           ? "pgolf causal attention kernel (kernels/attention.cpp)"
                                           : "scaled_dot_product_attention (sdpa_cpu_fp32)");
  r.emplace_back("sdpa_cpu_fp32", sdp_choice(torch::kCPU, torch::kFloat));
  r.emplace_back("sdpa_cpu_bf16", sdp_choice(torch::kCPU, torch::kBFloat16));
  const auto& ctx = at::globalContext();
  r.emplace_back(
      "sdpa_enabled",
      fmt::format("flash={} mem_efficient={} math={}", yes_no(ctx.userEnabledFlashSDP()),
                  yes_no(ctx.userEnabledMemEfficientSDP()), yes_no(ctx.userEnabledMathSDP())));
  const bool cuda = torch::cuda::is_available();
  const torch::Device gpu(torch::kCUDA, 0);
  r.emplace_back("sdpa_cuda_bf16",
                 cuda ? sdp_choice(gpu, torch::kBFloat16) : "n/a (no CUDA device)");
  r.emplace_back("sdpa_cuda_bf16_masked", cuda ? sdp_choice(gpu, torch::kBFloat16, /*masked=*/true)
                                               : "n/a (no CUDA device)");
}

void add_peaks(DoctorReport& r, const DoctorOptions& o) {
  const torch::Device cpu(torch::kCPU);
  r.emplace_back(fmt::format("gemm_peak_fp32_cpu_{}", o.gemm_size),
                 fmt::format("{:.1f} GFLOP/s", gemm_peak_gflops(o.gemm_size, torch::kFloat, cpu)));
  r.emplace_back(fmt::format("gemm_peak_bf16_cpu_{}", o.bf16_gemm_size),
                 fmt::format("{:.1f} GFLOP/s",
                             gemm_peak_gflops(o.bf16_gemm_size, torch::kBFloat16, cpu, 3.0)));
  if (torch::cuda::is_available()) {
    const torch::Device gpu(torch::kCUDA, 0);
    for (auto [name, dtype] : {std::pair{"fp32", torch::kFloat}, {"bf16", torch::kBFloat16}}) {
      r.emplace_back(fmt::format("gemm_peak_{}_cuda_4096", name),
                     fmt::format("{:.1f} GFLOP/s", gemm_peak_gflops(4096, dtype, gpu)));
    }
  }
}

}  // namespace

DoctorReport doctor_report(const DoctorOptions& options) {
  DoctorReport r;
  const std::string config = at::show_config();
  add_devices(r);
  add_build(r, config);
  add_threads(r);
  add_backends(r, config);
  if (options.measure) add_peaks(r, options);
  return r;
}

std::string format_doctor_report(const DoctorReport& report) {
  size_t width = 0;
  for (const auto& [k, v] : report) width = std::max(width, k.size());
  std::string out;
  for (const auto& [k, v] : report) out += fmt::format("{:<{}} {}\n", k + ":", width + 1, v);
  return out;
}

}  // namespace pgolf
