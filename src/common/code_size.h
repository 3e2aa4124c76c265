// The number of code bytes pgolf counts against the 16,000,000-byte cap: every
// project file needed to rebuild the evaluator (src/, cmake/, CMakeLists.txt),
// summed raw at build time (cmake/CodeSize.cmake).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pgolf {

struct CodeSize {
  int64_t bytes;
  int64_t files;
};

CodeSize code_size();
// The counted files, relative to the checkout, sorted: what `pgolf submit`
// copies into a record folder.
const std::vector<std::string>& code_files();

}  // namespace pgolf
