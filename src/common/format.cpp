#include "common/format.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>

namespace pgolf {

std::string with_commas(int64_t value) {
  const std::string digits = std::to_string(value);
  const size_t sign = value < 0 ? 1 : 0;
  std::string out = digits.substr(0, sign);
  for (size_t i = sign; i < digits.size(); ++i) {
    if (i > sign && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string format_bytes(double bytes) {
  if (bytes >= 1e9) return fmt::format("{:.2f} GB", bytes / 1e9);
  if (bytes >= 1e6) return fmt::format("{:.1f} MB", bytes / 1e6);
  if (bytes >= 1e3) return fmt::format("{:.1f} kB", bytes / 1e3);
  return fmt::format("{:.0f} B", bytes);
}

std::string format_duration(double seconds) {
  const int64_t s = std::llround(std::max(0.0, seconds));
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

namespace {

std::string join_dims(const int64_t* dims, size_t n, char open, char close) {
  std::string out(1, open);
  for (size_t i = 0; i < n; ++i) out += (i ? ", " : "") + std::to_string(dims[i]);
  return out + close;
}

}  // namespace

std::string shape_string(const torch::Tensor& t) {
  return join_dims(t.sizes().data(), t.sizes().size(), '[', ']');
}

std::string shape_string(const std::vector<int64_t>& shape) {
  return join_dims(shape.data(), shape.size(), '(', ')');
}

std::vector<std::string> split_list(std::string_view text) {
  std::vector<std::string> out;
  std::string item;
  auto flush = [&] {
    if (!item.empty()) out.push_back(item);
    item.clear();
  };
  for (const char c : text) {
    if (c == ',') {
      flush();
    } else if (c != ' ' && c != '\t') {
      item += c;
    }
  }
  flush();
  return out;
}

std::string now_string(TimeFormat format) {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  if (format == TimeFormat::kLocalStamp) {
    localtime_r(&now, &tm);
  } else {
    gmtime_r(&now, &tm);
  }
  const char* pattern = "%Y-%m-%dT%H:%M:%SZ";
  if (format == TimeFormat::kDate) pattern = "%Y-%m-%d";
  if (format == TimeFormat::kMinute) pattern = "%Y-%m-%d %H:%M UTC";
  if (format == TimeFormat::kLocalStamp) pattern = "%Y%m%d_%H%M%S";
  char text[40];
  std::strftime(text, sizeof(text), pattern, &tm);
  return text;
}

}  // namespace pgolf
