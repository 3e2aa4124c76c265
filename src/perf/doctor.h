// `pgolf doctor`: what this machine and this LibTorch give pgolf, as
// key: value lines (devices, versions, threads, GEMM and attention backends,
// measured GEMM peaks). Keys are stable so scripts and tests can read them.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace pgolf {

using DoctorReport = std::vector<std::pair<std::string, std::string>>;

struct DoctorOptions {
  int64_t gemm_size = 1024;      // fp32 peak: n x n matmul
  int64_t bf16_gemm_size = 512;  // smaller: bf16 can be ~100x slower on CPUs without it
  bool measure = true;           // false: skip the peak measurements
};

// Devices, LibTorch build, threads (after configure_threads), backends, peaks.
DoctorReport doctor_report(const DoctorOptions& options);

// "key: value" lines, keys padded to one column.
std::string format_doctor_report(const DoctorReport& report);

}  // namespace pgolf
