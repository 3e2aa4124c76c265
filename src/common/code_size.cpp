#include "common/code_size.h"

#include <fmt/format.h>

#include <filesystem>
#include <map>
#include <utility>

#include "common/format.h"

namespace pgolf {

const std::vector<std::string>& code_files() {
  static const std::vector<std::string> paths = [] {
    std::vector<std::string> out;
    for (const CodeFile& f : code_file_table()) out.push_back(f.path);
    return out;
  }();
  return paths;
}

std::string code_size_breakdown(bool every_file) {
  const CodeSize size = code_size();
  std::string out = fmt::format("Code: {} bytes counted ({}: {} files, {} raw bytes, {})\n",
                                with_commas(size.bytes), size.bundle, size.files,
                                with_commas(size.raw_bytes), size.codec);
  if (every_file) {
    for (const CodeFile& f : code_file_table()) {
      out += fmt::format("  {:<40} {:>9}\n", f.path, with_commas(f.bytes));
    }
    return out;
  }
  // Per folder ("." for the checkout's own files), in path order.
  std::map<std::string, std::pair<int64_t, int64_t>> folders;  // files, bytes
  for (const CodeFile& f : code_file_table()) {
    std::string folder = std::filesystem::path(f.path).parent_path().string();
    auto& [files, bytes] = folders[folder.empty() ? "." : folder];
    files += 1;
    bytes += f.bytes;
  }
  for (const auto& [folder, count] : folders) {
    out += fmt::format("  {:<16} {:>3} file{} {:>9} raw bytes\n", folder, count.first,
                       count.first == 1 ? " " : "s", with_commas(count.second));
  }
  return out;
}

}  // namespace pgolf
