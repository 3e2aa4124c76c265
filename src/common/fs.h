// Small file helpers: whole-file reads and atomic writes (write to a temporary
// in the same folder, fsync, rename), so a killed process never leaves a
// half-written file behind.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace pgolf {

std::string read_file(const std::filesystem::path& path);
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes);
// Sorted list of files matching a glob pattern such as "dir/fineweb_train_*.bin".
std::vector<std::filesystem::path> glob_files(const std::string& pattern);

}  // namespace pgolf
