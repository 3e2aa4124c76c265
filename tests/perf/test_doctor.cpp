// pgolf doctor prints every key it promises.
#include <gtest/gtest.h>

#include <map>
#include <regex>

#include "perf/doctor.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

TEST(Doctor, ReportHasDevicesVersionsThreadsAndBackends) {
  const auto report = doctor_report({.gemm_size = 64, .bf16_gemm_size = 32, .measure = false});
  std::map<std::string, std::string> keys(report.begin(), report.end());
  for (const char* k : {"cpu_model",
                        "cpu_cores",
                        "cpu_simd",
                        "cuda_devices",
                        "libtorch_version",
                        "libtorch_cuda_built",
                        "cuda_runtime_version",
                        "aten_cpu_capability",
                        "threads_intra_op",
                        "threads_inter_op",
                        "parallel_backend",
                        "omp_max_threads",
                        "mkl_max_threads",
                        "blas",
                        "mkldnn",
                        "gemm_fp32_cpu",
                        "gemm_bf16_cpu",
                        "fused_cpu_kernels",
                        "attention_cpu_fp32",
                        "host_memory",
                        "sdpa_cpu_fp32",
                        "sdpa_cpu_bf16",
                        "sdpa_cuda_bf16",
                        "sdpa_cuda_bf16_masked"}) {
    ASSERT_TRUE(keys.count(k)) << k;
    EXPECT_FALSE(keys[k].empty()) << k;
  }
  EXPECT_EQ(keys.count("gemm_peak_fp32_cpu_64"), 0u);  // measure = false
}

TEST(Doctor, CliPrintsTheMeasuredPeaks) {
  const auto r = testing::run_pgolf("doctor --threads 1 --gemm-size 128 --bf16-gemm-size 32");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* k : {"cpu_model:", "libtorch_version:", "libtorch_cuda_built:", "sdpa_cpu_fp32:",
                        "gemm_peak_fp32_cpu_128:", "gemm_peak_bf16_cpu_32:", "GFLOP/s"}) {
    EXPECT_NE(r.output.find(k), std::string::npos) << k << "\n" << r.output;
  }
  EXPECT_TRUE(std::regex_search(r.output, std::regex("threads_intra_op: +1\n"))) << r.output;
}

}  // namespace
}  // namespace pgolf
