// Text for people: counts, sizes, durations, shapes and timestamps, formatted
// one way everywhere (logs, reports, record folders, artifact headers).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pgolf {

// "1,234,567": thousands separators for counts in messages.
std::string with_commas(int64_t value);
// "12.3 MB" (decimal units, as download sizes are quoted).
std::string format_bytes(double bytes);
// "1:02:03" / "2:03" for durations.
std::string format_duration(double seconds);
// "[2, 3]" for a tensor's shape, "(2, 3)" for a stored one (as Python prints them).
std::string shape_string(const torch::Tensor& t);
std::string shape_string(const std::vector<int64_t>& shape);
// "a,b,,c" -> {"a", "b", "c"}: a comma-separated list, blanks and empty items dropped.
std::vector<std::string> split_list(std::string_view text);

// The current time, in UTC unless noted.
enum class TimeFormat {
  kIso8601,    // 2026-12-07T02:22:04Z   (artifact headers, submission.json)
  kDate,       // 2026-12-07             (record folder names)
  kMinute,     // 2026-12-07 02:22 UTC   (reports)
  kLocalStamp  // 20261207_022204, local time (default run ids)
};
std::string now_string(TimeFormat format);

}  // namespace pgolf
