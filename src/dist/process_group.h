// The process group of a training run: which rank this process is, how it
// finds its peers (torchrun's environment), the collectives data-parallel
// training needs (`pgolf train --nproc N`'s launcher: dist/launcher.h).
//
// Built on LibTorch's c10d: a TCPStore hosted by rank 0 for the rendezvous,
// then Gloo on CPU or NCCL on CUDA. A single-process group (world size 1) has
// no store and no backend: every collective is a no-op, so the trainer calls
// them unconditionally.
#pragma once

#include <c10/core/Event.h>
#include <torch/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace c10d {
class Backend;
}

namespace pgolf {

// Where this process sits in the run, as torchrun describes it.
struct DistEnv {
  int64_t rank = 0;
  int64_t world_size = 1;
  int64_t local_rank = 0;
  int64_t local_world_size = 1;  // ranks on this machine (LOCAL_WORLD_SIZE)
  // Started by a launcher (RANK and WORLD_SIZE set): the rank joins a real
  // process group, also alone (world size 1: NCCL or Gloo all the same).
  bool launched = false;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  bool active() const { return world_size > 1; }
};

// Reads RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT from `vars`.
// None of RANK / WORLD_SIZE set: a single process. Throws pgolf::Error naming
// the variable for a non-integer, out-of-range or inconsistent value (RANK
// without WORLD_SIZE, RANK >= WORLD_SIZE, a port outside 1..65535, ...).
DistEnv dist_env_from(const std::map<std::string, std::string>& vars);
// The same, from this process's environment.
DistEnv dist_env_from_environment();

struct DistOptions {
  // How long every rank may take to join (TCPStore rendezvous and the
  // backend's connection set-up): past it, a clear error naming the wait.
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(60)};
  // How long one collective may wait for its peers once everyone has joined.
  // Generous because rank 0 may do single-rank work (saving, an export)
  // while the others wait in a collective.
  std::chrono::milliseconds op_timeout{std::chrono::minutes(30)};
};

// One training run's process group. Collectives must be called by every rank
// in the same order with tensors of the same shapes and dtypes (as in c10d);
// a peer that died or stalled makes them throw pgolf::Error.
class ProcessGroup {
 public:
  ProcessGroup();  // single process: every collective is a no-op
  // Joins the run `env` describes (a no-op group for a single process that no
  // launcher started: neither env.launched nor env.active()); Gloo for a
  // CPU `device`, NCCL for CUDA (which also makes `device` current).
  ProcessGroup(const DistEnv& env, torch::Device device, const DistOptions& options = {});
  // A group over a backend made elsewhere (tests: a recording fake).
  ProcessGroup(int64_t rank, int64_t world_size, torch::Device device,
               c10::intrusive_ptr<c10d::Backend> backend, std::string backend_name);
  ~ProcessGroup();
  ProcessGroup(ProcessGroup&&) noexcept;
  ProcessGroup& operator=(ProcessGroup&&) noexcept;
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int64_t rank() const;
  int64_t world_size() const;
  // Collectives run (a backend is connected); false: every one is a no-op.
  bool active() const;
  bool master() const { return rank() == 0; }
  std::string backend() const;  // "none", "gloo" or "nccl"
  // Where the collectives run: tensors from elsewhere (the evaluations' CPU
  // float64 sums under NCCL) are copied there and back, so a caller never
  // needs to know the backend.
  torch::Device device() const;

  // Averages floating-point tensors across ranks, in place. Tensors are
  // coalesced into one flat buffer per dtype, so one collective per dtype.
  void all_reduce_mean(std::vector<torch::Tensor>& tensors);
  // Sums one tensor across ranks, in place.
  void all_reduce_sum(torch::Tensor& tensor);
  // The largest `value` over all ranks (e.g. elapsed time, for a wall-clock
  // stop every rank agrees on).
  double all_reduce_max(double value);
  // The same, started now and read later: the result is copied to the host
  // behind the collective, and get() waits only for that copy (the training
  // loop reads step k's value at step k + 1, so no step waits on the device).
  class PendingMax {
   public:
    double get();

   private:
    friend class ProcessGroup;
    double value_ = 0;                 // world size 1: the value itself
    torch::Tensor host_;               // else: the reduced value, on the host once
    std::optional<c10::Event> ready_;  // this event (CUDA; none on the CPU) has passed
  };
  PendingMax all_reduce_max_async(double value);
  // Copies `root`'s tensors to every rank, in place (coalesced per dtype).
  void broadcast(std::vector<torch::Tensor>& tensors, int64_t root = 0);
  // Returns once every rank has reached it.
  void barrier();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A TCP port on `addr` that nothing listens on right now (the kernel's pick).
int free_tcp_port(const std::string& addr = "127.0.0.1");

}  // namespace pgolf
