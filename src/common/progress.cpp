// Progress: one live line on terminals, rate-limited plain lines elsewhere.
#include "common/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "common/format.h"

namespace pgolf {
namespace {

// Redraws faster than this only burn terminal bandwidth.
constexpr double kLiveRedrawS = 0.1;

std::string format_rate(double per_second, std::string_view unit) {
  if (per_second >= 1e6) return fmt::format("{:.2f}M {}/s", per_second / 1e6, unit);
  if (per_second >= 1e3) return fmt::format("{:.1f}k {}/s", per_second / 1e3, unit);
  return fmt::format("{:.1f} {}/s", per_second, unit);
}

// The progress whose live line is on screen, if any. Progress is used from
// one thread at a time (the main loop), so a plain pointer suffices.
Progress* g_live = nullptr;

}  // namespace

void print_line(std::FILE* out, std::string_view line) {
  const bool erase = g_live && g_live->drawn_ && g_live->options_.out == out;
  if (erase) g_live->drawn_ = false;
  fmt::print(out, "{}{}\n", erase ? "\r\x1b[K" : "", line);
  std::fflush(out);
}

Progress::Progress(std::string label, int64_t total, std::string unit, Options options)
    : label_(std::move(label)),
      total_(total),
      unit_(std::move(unit)),
      options_(options),
      live_(!options.quiet && (options.force_live || ::isatty(::fileno(options.out)) == 1)),
      start_(Clock::now()),
      last_print_(start_) {}

Progress::Progress(std::string label, int64_t total, std::string unit, bool quiet)
    : Progress(std::move(label), total, std::move(unit), Options{.quiet = quiet}) {}

Progress::~Progress() {
  // A live line left without a newline would be overwritten by the next output.
  if (drawn_ && !finished_) fmt::print(options_.out, "\n");
  if (g_live == this) g_live = nullptr;
}

double Progress::elapsed_s() const {
  return std::chrono::duration<double>(Clock::now() - start_).count();
}

void Progress::update(int64_t done, std::string_view extra) {
  done_ = done;
  if (!extra.empty()) extra_ = extra;
  if (finished_) return;
  if (live_) {
    print_live(extra_);
  } else {
    print_plain(extra_);
  }
}

std::string Progress::count(int64_t units) const {
  return options_.bytes ? format_bytes(static_cast<double>(units)) : with_commas(units);
}

std::string Progress::rate(double units_per_s) const {
  return options_.bytes ? format_bytes(units_per_s) + "/s" : format_rate(units_per_s, unit_);
}

void Progress::advance(int64_t units, std::string_view extra) { update(done_ + units, extra); }

std::string Progress::status_line(std::string_view extra) const {
  const double elapsed = elapsed_s();
  const double per_s = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
  const std::string unit = options_.bytes ? "" : " " + unit_;
  std::string line = fmt::format("{}: {}", label_, count(done_));
  if (total_ > 0) {
    line += fmt::format("/{}{} ({:.1f}%)", count(total_), unit,
                        100.0 * static_cast<double>(done_) / static_cast<double>(total_));
  } else {
    line += unit;
  }
  line += ", " + rate(per_s);
  if (total_ > 0 && per_s > 0 && done_ < total_) {
    line += ", ETA " + format_duration(static_cast<double>(total_ - done_) / per_s);
  }
  if (!extra.empty()) line += fmt::format(", {}", extra);
  return line;
}

void Progress::print_live(std::string_view extra) {
  const auto now = Clock::now();
  const bool last = total_ > 0 && done_ >= total_;
  if (!last && std::chrono::duration<double>(now - last_print_).count() < kLiveRedrawS) return;
  last_print_ = now;
  // \r + "erase to end of line" redraws in place.
  fmt::print(options_.out, "\r\x1b[K{}", status_line(extra));
  drawn_ = true;
  g_live = this;
  std::fflush(options_.out);
}

void Progress::print_plain(std::string_view extra) {
  const auto now = Clock::now();
  if (std::chrono::duration<double>(now - last_print_).count() < options_.interval_s) return;
  last_print_ = now;
  fmt::print(options_.out, "{}\n", status_line(extra));
  std::fflush(options_.out);
}

void Progress::message(std::string_view line) { print_line(options_.out, line); }

void Progress::finish(std::string_view extra) {
  if (finished_) return;
  finished_ = true;
  const double elapsed = elapsed_s();
  const double per_s = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
  const std::string unit = options_.bytes ? "" : " " + unit_;
  std::string line =
      fmt::format("{}: {}{} in {:.1f} s ({})", label_, count(done_), unit, elapsed, rate(per_s));
  if (!extra.empty()) line += fmt::format(", {}", extra);
  print_line(options_.out, line);
  if (g_live == this) g_live = nullptr;
}

}  // namespace pgolf
