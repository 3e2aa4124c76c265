#include "perf/op_profile.h"

#include <fmt/format.h>
#include <torch/csrc/autograd/profiler_kineto.h>

#include <algorithm>
#include <map>

namespace pgolf {
namespace {

namespace prof = torch::autograd::profiler;
namespace impl = torch::profiler::impl;

struct Span {
  std::string name;
  uint64_t thread, start, end;
  uint64_t child_ns = 0;
};

// Self time: an event's duration minus its direct children's, where a child
// is an event of the same thread nested inside it.
void subtract_children(std::vector<Span>& spans) {
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    if (a.thread != b.thread) return a.thread < b.thread;
    if (a.start != b.start) return a.start < b.start;
    return a.end > b.end;  // parents before the children that start with them
  });
  std::vector<Span*> stack;
  for (auto& s : spans) {
    while (!stack.empty() && (stack.back()->thread != s.thread || stack.back()->end <= s.start)) {
      stack.pop_back();
    }
    if (!stack.empty()) stack.back()->child_ns += s.end - s.start;
    stack.push_back(&s);
  }
}

}  // namespace

std::vector<OpCost> profile_ops(const std::function<void()>& fn) {
  const impl::ProfilerConfig config(impl::ProfilerState::KINETO);
  const std::set<impl::ActivityType> activities = {impl::ActivityType::CPU};
  prof::prepareProfiler(config, activities);
  prof::enableProfiler(config, activities);
  try {
    fn();
  } catch (...) {
    prof::disableProfiler();
    throw;
  }
  const auto result = prof::disableProfiler();
  std::vector<Span> spans;
  for (const auto& e : result->events()) {
    if (e.deviceType() != c10::DeviceType::CPU || e.endNs() < e.startNs()) continue;
    spans.push_back({e.name(), e.startThreadId(), e.startNs(), e.endNs()});
  }
  subtract_children(spans);
  std::map<std::string, OpCost> by_name;
  for (const auto& s : spans) {
    auto& c = by_name[s.name];
    c.name = s.name;
    c.calls += 1;
    c.total_ms += (s.end - s.start) / 1e6;
    c.self_ms += (s.end - s.start - std::min(s.child_ns, s.end - s.start)) / 1e6;
  }
  std::vector<OpCost> costs;
  for (auto& [name, c] : by_name) costs.push_back(c);
  std::sort(costs.begin(), costs.end(),
            [](const OpCost& a, const OpCost& b) { return a.self_ms > b.self_ms; });
  return costs;
}

std::string format_op_profile(const std::vector<OpCost>& costs, size_t top) {
  double sum = 0;
  for (const auto& c : costs) sum += c.self_ms;
  std::string out =
      fmt::format("{:>10} {:>7} {:>10} {:>7}  {}\n", "self_ms", "share", "total_ms", "calls", "op");
  for (size_t i = 0; i < std::min(top, costs.size()); ++i) {
    const auto& c = costs[i];
    out += fmt::format("{:>10.1f} {:>6.1f}% {:>10.1f} {:>7}  {}\n", c.self_ms,
                       sum > 0 ? 100 * c.self_ms / sum : 0.0, c.total_ms, c.calls, c.name);
  }
  out += fmt::format("{:>10.1f} {:>7} (all ops, self time)\n", sum, "100%");
  return out;
}

}  // namespace pgolf
