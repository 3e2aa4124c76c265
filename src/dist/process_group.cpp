#include "dist/process_group.h"

#include <arpa/inet.h>
#include <c10/core/impl/VirtualGuardImpl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <thread>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "common/error.h"

#ifdef PGOLF_HAVE_NCCL
#include <c10/cuda/CUDAFunctions.h>

#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

extern char** environ;

namespace pgolf {
namespace {

// ---------------------------------------------------------------------------
// The environment.

int64_t parse_int(const std::string& name, const std::string& text, int64_t lo, int64_t hi) {
  int64_t value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  PGOLF_CHECK(!text.empty() && ec == std::errc() && ptr == end, "{} must be an integer, got '{}'",
              name, text);
  PGOLF_CHECK(value >= lo && value <= hi, "{}={} is out of range [{}, {}]", name, value, lo, hi);
  return value;
}

std::optional<std::string> lookup(const std::map<std::string, std::string>& vars,
                                  const char* name) {
  const auto it = vars.find(name);
  if (it == vars.end()) return std::nullopt;
  return it->second;
}

// ---------------------------------------------------------------------------
// Errors from c10d (c10::Error carries a backtrace in what()).

std::string describe(const std::exception& e) {
  std::string text = e.what();
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&e)) {
    text = c10_error->what_without_backtrace();
  }
  while (!text.empty() &&
         (std::isspace(static_cast<unsigned char>(text.back())) || text.back() == '.')) {
    text.pop_back();
  }
  return text;
}

bool is_loopback(const std::string& addr) {
  return addr == "localhost" || addr.starts_with("127.") || addr == "::1";
}

// The Gloo transport device(s) a rank listens on. As torch.distributed does,
// GLOO_SOCKET_IFNAME (comma-separated interfaces) wins; otherwise a run whose
// master is on loopback (every local launch) stays on loopback, and any other
// run binds to the address this machine's hostname resolves to.
std::vector<std::shared_ptr<::gloo::transport::Device>> gloo_devices(
    const std::string& master_addr) {
  std::vector<std::shared_ptr<::gloo::transport::Device>> devices;
  if (const char* ifnames = std::getenv("GLOO_SOCKET_IFNAME"); ifnames && *ifnames) {
    std::string list = ifnames;
    size_t start = 0;
    while (start <= list.size()) {
      const size_t comma = std::min(list.find(',', start), list.size());
      if (comma > start) {
        devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(
            list.substr(start, comma - start), /*lazyInit=*/false));
      }
      start = comma + 1;
    }
  }
  if (devices.empty() && is_loopback(master_addr)) {
    devices.push_back(
        c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1", /*lazyInit=*/false));
  }
  if (devices.empty()) {
    devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice(/*lazyInit=*/false));
  }
  return devices;
}

std::string seconds(std::chrono::milliseconds ms) {
  return fmt::format("{:g} s", static_cast<double>(ms.count()) / 1000.0);
}

}  // namespace

DistEnv dist_env_from(const std::map<std::string, std::string>& vars) {
  const auto rank = lookup(vars, "RANK");
  const auto world = lookup(vars, "WORLD_SIZE");
  DistEnv env;
  if (!rank && !world) return env;
  env.launched = true;
  PGOLF_CHECK(rank && world,
              "{} is set but {} is not: a multi-process run needs both (torchrun sets "
              "RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT)",
              rank ? "RANK" : "WORLD_SIZE", rank ? "WORLD_SIZE" : "RANK");
  env.world_size = parse_int("WORLD_SIZE", *world, 1, 1 << 20);
  env.rank = parse_int("RANK", *rank, 0, 1 << 20);
  PGOLF_CHECK(env.rank < env.world_size, "RANK={} must be below WORLD_SIZE={}", env.rank,
              env.world_size);
  env.local_rank = env.rank;
  if (const auto local = lookup(vars, "LOCAL_RANK")) {
    env.local_rank = parse_int("LOCAL_RANK", *local, 0, 1 << 20);
    PGOLF_CHECK(env.local_rank < env.world_size, "LOCAL_RANK={} must be below WORLD_SIZE={}",
                env.local_rank, env.world_size);
  }
  // torchrun sets it; without it, every rank is taken to share this machine.
  env.local_world_size = env.world_size;
  if (const auto local_world = lookup(vars, "LOCAL_WORLD_SIZE")) {
    env.local_world_size = parse_int("LOCAL_WORLD_SIZE", *local_world, 1, env.world_size);
    PGOLF_CHECK(env.local_rank < env.local_world_size,
                "LOCAL_RANK={} must be below LOCAL_WORLD_SIZE={}", env.local_rank,
                env.local_world_size);
  }
  if (const auto addr = lookup(vars, "MASTER_ADDR")) {
    PGOLF_CHECK(!addr->empty(), "MASTER_ADDR is set but empty");
    env.master_addr = *addr;
  }
  if (const auto port = lookup(vars, "MASTER_PORT")) {
    env.master_port = static_cast<int>(parse_int("MASTER_PORT", *port, 1, 65535));
  }
  return env;
}

DistEnv dist_env_from_environment() {
  std::map<std::string, std::string> vars;
  for (const char* name :
       {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"}) {
    if (const char* value = std::getenv(name)) vars[name] = value;
  }
  return dist_env_from(vars);
}

// ---------------------------------------------------------------------------
// The process group.

struct ProcessGroup::Impl {
  int64_t rank = 0;
  int64_t world_size = 1;
  torch::Device device = torch::kCPU;
  std::string backend_name = "none";
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;

  // Runs one collective to completion, turning any failure into one clear error.
  template <typename Launch>
  void run(const char* what, Launch&& launch) {
    try {
      launch()->wait();
    } catch (const std::exception& e) {
      fail("{} failed on rank {} of {} ({}): {}", what, rank, world_size, backend_name,
           describe(e));
    }
  }

  void check_tensor(const torch::Tensor& t, size_t index, const char* what) const {
    PGOLF_CHECK(t.defined(), "{}: tensor {} is undefined", what, index);
    PGOLF_CHECK(t.layout() == torch::kStrided, "{}: tensor {} is not dense", what, index);
  }

  // `t` where the backend needs it (NCCL: the rank's GPU; Gloo: the CPU).
  torch::Tensor on_device(const torch::Tensor& t) const { return t.to(device).contiguous(); }

  // Applies `collective` to `tensors` with one flat buffer per dtype (order of
  // first appearance, the same on every rank), passes each buffer to `finish`,
  // then writes the buffers back into the tensors.
  template <typename Collective, typename Finish>
  void coalesced(std::vector<torch::Tensor>& tensors, const char* what, Collective&& collective,
                 Finish&& finish) {
    std::vector<torch::ScalarType> dtypes;
    std::vector<std::vector<size_t>> groups;
    for (size_t i = 0; i < tensors.size(); ++i) {
      const auto dtype = tensors[i].scalar_type();
      const auto it = std::find(dtypes.begin(), dtypes.end(), dtype);
      if (it == dtypes.end()) {
        dtypes.push_back(dtype);
        groups.push_back({i});
      } else {
        groups[static_cast<size_t>(it - dtypes.begin())].push_back(i);
      }
    }
    std::vector<torch::Tensor> buffers;
    for (const auto& group : groups) {
      if (group.size() == 1) {
        buffers.push_back(on_device(tensors[group[0]]));  // in place where it can be
        continue;
      }
      std::vector<torch::Tensor> flat;
      flat.reserve(group.size());
      for (size_t i : group) flat.push_back(on_device(tensors[i]).reshape(-1));
      buffers.push_back(torch::cat(flat));
    }
    // Every collective is queued before the first wait.
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    try {
      for (auto& buffer : buffers) {
        std::vector<at::Tensor> one{buffer};
        works.push_back(collective(one));
        buffer = one[0];  // c10d's contract: the result is in the vector's tensor
      }
      for (auto& work : works) work->wait();
    } catch (const std::exception& e) {
      fail("{} failed on rank {} of {} ({}): {}", what, rank, world_size, backend_name,
           describe(e));
    }
    for (size_t g = 0; g < groups.size(); ++g) {
      finish(buffers[g]);
      if (buffers[g].is_same(tensors[groups[g][0]])) continue;
      if (groups[g].size() == 1) {
        tensors[groups[g][0]].copy_(buffers[g]);
        continue;
      }
      int64_t offset = 0;
      for (size_t i : groups[g]) {
        auto& t = tensors[i];
        t.copy_(buffers[g].narrow(0, offset, t.numel()).view(t.sizes()));
        offset += t.numel();
      }
    }
  }
};

ProcessGroup::ProcessGroup() : impl_(std::make_unique<Impl>()) {}

ProcessGroup::ProcessGroup(int64_t rank, int64_t world_size, torch::Device device,
                           c10::intrusive_ptr<c10d::Backend> backend, std::string backend_name)
    : impl_(std::make_unique<Impl>()) {
  PGOLF_CHECK(rank >= 0 && rank < world_size, "rank {} is outside world size {}", rank, world_size);
  PGOLF_CHECK(backend || world_size == 1, "a group of {} ranks needs a backend", world_size);
  impl_->rank = rank;
  impl_->world_size = world_size;
  impl_->device = device;
  impl_->backend = std::move(backend);
  impl_->backend_name = std::move(backend_name);
}

ProcessGroup::ProcessGroup(const DistEnv& env, torch::Device device, const DistOptions& options)
    : impl_(std::make_unique<Impl>()) {
  impl_->device = device;
  if (!env.launched && !env.active()) return;  // a single process: no-op group
  if (device.is_cuda() && !device.has_index()) {
    device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank));
    impl_->device = device;  // tensors say cuda:N, so the checks compare with cuda:N
  }
  PGOLF_CHECK(env.rank >= 0 && env.rank < env.world_size, "rank {} is outside world size {}",
              env.rank, env.world_size);
  PGOLF_CHECK(env.master_port >= 1 && env.master_port <= 65535, "master port {} is out of range",
              env.master_port);
  PGOLF_CHECK(device.is_cpu() || device.is_cuda(),
              "distributed training runs on cpu or cuda, not {}", device.str());
  impl_->rank = env.rank;
  impl_->world_size = env.world_size;
  const int rank = static_cast<int>(env.rank);
  const int size = static_cast<int>(env.world_size);
  const std::string where = fmt::format("{}:{}", env.master_addr, env.master_port);

  // Rendezvous: rank 0 hosts the store and waits for every rank to connect.
  try {
    c10d::TCPStoreOptions store_options;
    store_options.port = static_cast<uint16_t>(env.master_port);
    store_options.isServer = env.rank == 0;
    store_options.numWorkers = static_cast<size_t>(env.world_size);
    store_options.waitWorkers = true;
    store_options.timeout = options.connect_timeout;
    auto tcp = c10::make_intrusive<c10d::TCPStore>(env.master_addr, store_options);
    impl_->store = c10::make_intrusive<c10d::PrefixStore>("pgolf", tcp);
  } catch (const std::exception& e) {
    fail(
        "rank {} of {}: the rendezvous at MASTER_ADDR:MASTER_PORT={} failed (timeout {}, {}): "
        "{}. Every rank must start within the timeout, and rank 0 must be able to listen on "
        "that port",
        rank, size, where, seconds(options.connect_timeout),
        rank == 0 ? "hosting it" : "joining it", describe(e));
  }

  try {
    if (device.is_cpu()) {
      impl_->backend_name = "gloo";
      auto gloo_options = c10d::ProcessGroupGloo::Options::create(options.connect_timeout);
      gloo_options->devices = gloo_devices(env.master_addr);
      auto gloo =
          c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, rank, size, gloo_options);
      gloo->setTimeout(options.op_timeout);  // connected: from now on, per collective
      impl_->backend = gloo;
    } else {
#ifdef PGOLF_HAVE_NCCL
      impl_->backend_name = "nccl";
      c10::cuda::set_device(device.index());
      auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
      nccl_options->timeout = options.op_timeout;
      impl_->backend =
          c10::make_intrusive<c10d::ProcessGroupNCCL>(impl_->store, rank, size, nccl_options);
#else
      fail("this pgolf build has no NCCL: multi-process training on {} is unavailable",
           device.str());
#endif
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail("rank {} of {}: connecting the {} process group failed (timeout {}): {}", rank, size,
         impl_->backend_name, seconds(options.connect_timeout), describe(e));
  }
}

ProcessGroup::~ProcessGroup() {
  if (!impl_ || !impl_->backend) return;
  try {
    if (impl_->backend_name == "nccl") impl_->backend->shutdown();
  } catch (...) {  // a destructor must not throw; the run is over anyway
  }
}

ProcessGroup::ProcessGroup(ProcessGroup&&) noexcept = default;
ProcessGroup& ProcessGroup::operator=(ProcessGroup&&) noexcept = default;

int64_t ProcessGroup::rank() const { return impl_->rank; }
int64_t ProcessGroup::world_size() const { return impl_->world_size; }
std::string ProcessGroup::backend() const { return impl_->backend_name; }
torch::Device ProcessGroup::device() const { return impl_->device; }
bool ProcessGroup::active() const { return impl_->backend != nullptr; }

void ProcessGroup::all_reduce_mean(std::vector<torch::Tensor>& tensors) {
  if (!active() || tensors.empty()) return;
  for (size_t i = 0; i < tensors.size(); ++i) {
    impl_->check_tensor(tensors[i], i, "all_reduce_mean");
    PGOLF_CHECK(tensors[i].is_floating_point(),
                "all_reduce_mean: tensor {} is {}, not floating point", i,
                c10::toString(tensors[i].scalar_type()));
  }
  torch::NoGradGuard no_grad;  // parameters may be passed: in place, autograd aside
  const double world = static_cast<double>(world_size());
  impl_->coalesced(
      tensors, "all_reduce_mean",
      [&](std::vector<at::Tensor>& one) {
        c10d::AllreduceOptions opts;
        opts.reduceOp = c10d::ReduceOp::SUM;
        return impl_->backend->allreduce(one, opts);
      },
      [&](torch::Tensor& buffer) { buffer.div_(world); });
}

void ProcessGroup::all_reduce_sum(torch::Tensor& tensor) {
  if (!active()) return;
  impl_->check_tensor(tensor, 0, "all_reduce_sum");
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> one{impl_->on_device(tensor)};
  impl_->run("all_reduce_sum", [&] {
    c10d::AllreduceOptions opts;
    opts.reduceOp = c10d::ReduceOp::SUM;
    return impl_->backend->allreduce(one, opts);
  });
  if (!one[0].is_same(tensor)) tensor.copy_(one[0]);
}

double ProcessGroup::all_reduce_max(double value) { return all_reduce_max_async(value).get(); }

ProcessGroup::PendingMax ProcessGroup::all_reduce_max_async(double value) {
  PendingMax pending;
  pending.value_ = value;
  if (!active()) return pending;
  std::vector<at::Tensor> one{
      torch::full({1}, value, torch::TensorOptions().dtype(torch::kFloat64).device(impl_->device))};
  // NCCL's wait() only orders the current stream after the collective; the
  // host is not blocked (Gloo's CPU collective does block, briefly).
  impl_->run("all_reduce_max", [&] {
    c10d::AllreduceOptions opts;
    opts.reduceOp = c10d::ReduceOp::MAX;
    return impl_->backend->allreduce(one, opts);
  });
  pending.host_ = one[0].to(torch::kCPU, /*non_blocking=*/true);  // pinned, asynchronous
  if (one[0].is_cuda()) {
    pending.ready_.emplace(c10::DeviceType::CUDA);
    c10::impl::VirtualGuardImpl guard(c10::DeviceType::CUDA);
    pending.ready_->record(guard.getStream(one[0].device()));
  }
  return pending;
}

double ProcessGroup::PendingMax::get() {
  if (!host_.defined()) return value_;
  if (ready_) ready_->synchronize();
  return host_.item<double>();
}

void ProcessGroup::broadcast(std::vector<torch::Tensor>& tensors, int64_t root) {
  if (!active()) return;
  PGOLF_CHECK(root >= 0 && root < world_size(), "broadcast: root {} is outside world size {}", root,
              world_size());
  if (tensors.empty()) return;
  for (size_t i = 0; i < tensors.size(); ++i) impl_->check_tensor(tensors[i], i, "broadcast");
  torch::NoGradGuard no_grad;
  impl_->coalesced(
      tensors, "broadcast",
      [&](std::vector<at::Tensor>& one) {
        c10d::BroadcastOptions opts;
        opts.rootRank = root;
        return impl_->backend->broadcast(one, opts);
      },
      [](torch::Tensor&) {});
}

void ProcessGroup::barrier() {
  if (!active()) return;
  impl_->run("barrier", [&] {
    c10d::BarrierOptions opts;
    if (impl_->device.is_cuda()) opts.device = impl_->device;
    return impl_->backend->barrier(opts);
  });
}

// ---------------------------------------------------------------------------
// Local launch.

int free_tcp_port(const std::string& addr) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc = getaddrinfo(addr.c_str(), "0", &hints, &found);
  PGOLF_CHECK(rc == 0 && found, "cannot resolve '{}': {}", addr, gai_strerror(rc));
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(found, &freeaddrinfo);
  const int fd = socket(found->ai_family, found->ai_socktype | SOCK_CLOEXEC, found->ai_protocol);
  PGOLF_CHECK(fd >= 0, "socket(): {}", std::strerror(errno));
  sockaddr_storage bound{};
  socklen_t length = sizeof(bound);
  const bool ok = bind(fd, found->ai_addr, found->ai_addrlen) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length) == 0;
  const int error = errno;
  close(fd);
  PGOLF_CHECK(ok, "cannot find a free port on {}: {}", addr, std::strerror(error));
  const auto port = bound.ss_family == AF_INET6
                        ? reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port
                        : reinterpret_cast<const sockaddr_in*>(&bound)->sin_port;
  return ntohs(port);
}

}  // namespace pgolf
