// Where tensors live and how many threads compute: the only place that knows
// about CPU versus CUDA, so the rest of pgolf stays device-agnostic.
#pragma once

#include <torch/types.h>

#include <string>

namespace pgolf {

// "cpu", "cuda", "cuda:N" -> a device; a clear error if CUDA is asked for but absent.
torch::Device resolve_device(const std::string& name);

// Sets intra-op threads (0: this machine's cores shared among its
// `local_ranks` processes; LibTorch would give each rank all of them) and
// flushes denormals to zero on the CPU.
void configure_threads(int64_t threads, int64_t local_ranks = 1);

// Waits for queued device work (a no-op on CPU), so wall-clock timings are real.
void synchronize(torch::Device device);

std::string compute_dtype_name(torch::ScalarType dtype);

}  // namespace pgolf
