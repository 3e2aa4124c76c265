// Progress reporting for long loops (tokenizing, training, evaluating).
// On a terminal it redraws one live line; otherwise (logs, pipes) or when
// quiet, it prints a plain line at most every `interval_s` seconds, so log
// files stay short. finish() always prints one summary line. The latest
// `extra` (e.g. the last logged loss) stays on the line until replaced.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace pgolf {

// Seconds on the steady clock since `start`.
inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

class Progress {
 public:
  struct Options {
    bool quiet = false;        // never redraw; plain periodic lines only
    double interval_s = 10.0;  // seconds between plain lines
    std::FILE* out = stdout;
    bool bytes = false;       // counts are bytes: shown as kB / MB / GB (downloads)
    bool force_live = false;  // redraw in place even when `out` is not a terminal (tests)
  };

  // total <= 0 means unknown: no percentage and no ETA.
  Progress(std::string label, int64_t total, std::string unit, Options options);
  Progress(std::string label, int64_t total, std::string unit, bool quiet = false);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Sets the units done so far; `extra` (e.g. "loss 3.21") is shown after the
  // counts, and kept for later updates that pass none.
  void update(int64_t done, std::string_view extra = {});
  void advance(int64_t units = 1, std::string_view extra = {});
  // Re-estimates the total, e.g. the steps that fit in a wall-clock budget.
  void set_total(int64_t total) { total_ = total; }
  // Prints a line of its own (a warning, a retry) without mangling the live
  // line, which is redrawn by the next update.
  void message(std::string_view line);
  // Prints the summary line (units, time, rate); later calls do nothing.
  void finish(std::string_view extra = {});

  int64_t done() const { return done_; }
  double elapsed_s() const;

 private:
  using Clock = std::chrono::steady_clock;

  std::string status_line(std::string_view extra) const;
  std::string count(int64_t units) const;
  std::string rate(double units_per_s) const;
  friend void print_line(std::FILE* out, std::string_view line);
  void print_live(std::string_view extra);
  void print_plain(std::string_view extra);

  std::string label_;
  int64_t total_;
  std::string unit_;
  Options options_;
  bool live_;  // redraw in place: a terminal and not quiet
  int64_t done_ = 0;
  std::string extra_;   // the latest non-empty extra
  bool drawn_ = false;  // a live line is on screen
  bool finished_ = false;
  Clock::time_point start_;
  Clock::time_point last_print_;
};

// Prints `line` and a newline to `out`, first erasing a live progress line
// drawn there (the next update redraws it), so log lines never run into it.
void print_line(std::FILE* out, std::string_view line);

}  // namespace pgolf
