// Run logging. RunLog mirrors the reference's log0(): lines go to stdout and to
// the run's text log, from rank 0 only. MetricsLog appends one JSON object per
// line (metrics.jsonl), flushed at once so a killed run keeps what it logged.
#pragma once

#include <filesystem>
#include <fstream>
#include <nlohmann/json_fwd.hpp>
#include <string>

namespace pgolf {

class RunLog {
 public:
  RunLog() = default;  // stdout only
  RunLog(const std::filesystem::path& file, bool master);
  void print(const std::string& line);      // stdout and file
  void file_only(const std::string& line);  // file only
  bool master() const { return master_; }

 private:
  std::ofstream file_;
  bool master_ = true;
};

class MetricsLog {
 public:
  MetricsLog() = default;  // discards
  MetricsLog(const std::filesystem::path& file, bool master);
  void write(const nlohmann::json& record);

 private:
  std::ofstream file_;
};

}  // namespace pgolf
