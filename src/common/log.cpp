#include "common/log.h"

#include <fmt/format.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/progress.h"

namespace pgolf {

RunLog::RunLog(const std::filesystem::path& file, bool master) : master_(master) {
  if (!master_ || file.empty()) return;
  file_.open(file, std::ios::app);
  PGOLF_CHECK(file_.good(), "{}: cannot open log file", file.string());
}

void RunLog::print(const std::string& line) {
  if (!master_) return;
  print_line(stdout, line);  // erases a live progress line first
  file_only(line);
}

void RunLog::file_only(const std::string& line) {
  if (!master_ || !file_.is_open()) return;
  file_ << line << '\n';
  file_.flush();
}

MetricsLog::MetricsLog(const std::filesystem::path& file, bool master) {
  if (!master || file.empty()) return;
  file_.open(file, std::ios::app);
  PGOLF_CHECK(file_.good(), "{}: cannot open metrics file", file.string());
}

void MetricsLog::write(const nlohmann::json& record) {
  if (!file_.is_open()) return;
  file_ << record.dump() << '\n';
  file_.flush();
}

}  // namespace pgolf
