// pgolf::Error and PGOLF_CHECK: every user-facing failure (bad file, impossible
// config, corrupt artifact) is one Error with one clear message. main() prints
// it and exits non-zero; nothing else catches it.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace pgolf {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace pgolf

// PGOLF_CHECK(cond, "format {}", args...): throws pgolf::Error when cond is false.
#define PGOLF_CHECK(cond, ...)               \
  do {                                       \
    if (!(cond)) ::pgolf::fail(__VA_ARGS__); \
  } while (false)
