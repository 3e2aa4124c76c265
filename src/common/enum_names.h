// One name per enum value, kept in one table per enum: the enum's
// `enum_names(E)` (found by argument-dependent lookup) returns its
// {value, name} pairs. name_of() and parse_name() then serve every enum the
// same way: config options, artifact headers, logs.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"

namespace pgolf {

template <typename E>
struct EnumName {
  E value;
  std::string_view name;
};

template <typename E>
std::string_view name_of(E value) {
  for (const auto& entry : enum_names(E{})) {
    if (entry.value == value) return entry.name;
  }
  return "?";
}

template <typename E>
std::optional<E> find_by_name(std::string_view name) {
  for (const auto& entry : enum_names(E{})) {
    if (entry.name == name) return entry.value;
  }
  return std::nullopt;
}

// "a | b | c": the names, for help texts and errors.
template <typename E>
std::string name_choices() {
  std::string out;
  for (const auto& entry : enum_names(E{})) {
    out += (out.empty() ? "" : " | ") + std::string(entry.name);
  }
  return out;
}

// The value named `name`, or a pgolf::Error naming `what` and the choices.
template <typename E>
E parse_name(std::string_view name, std::string_view what) {
  if (const auto value = find_by_name<E>(name)) return *value;
  fail("{}: '{}' is not one of {}", what, name, name_choices<E>());
}

}  // namespace pgolf
