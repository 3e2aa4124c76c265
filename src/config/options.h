// The one table that maps every config field to its command-line flag and its
// environment-variable name (the challenge's names: NUM_LAYERS, MODEL_DIM, ...).
//
//   key "num_layers"  ->  flag --num-layers  ->  env NUM_LAYERS  ->  json model.num_layers
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "config/config.h"

namespace CLI {
class App;
}

namespace pgolf {

struct Option {
  std::string group;  // model | data | train | eval | quant | runtime
  std::string key;    // snake_case field name; also the JSON key
  std::string env;    // environment variable
  std::string help;
  std::string values;      // what it takes: "integer", "0 | 1", "blocks | cores | banks", ...
  bool is_switch = false;  // a bool: the flag alone means 1
  std::function<void(const std::string&)> set;  // parses and assigns; throws pgolf::Error
  std::function<std::string()> get;             // current value as text

  std::string flag() const;  // "--" + key with '_' -> '-'
};

// The table, bound to the fields of `config`.
std::vector<Option> config_options(Config& config);

// The variables pgolf reads that are not config fields: set by a launcher,
// read by a library, or a test seam. Every getenv in src/ names a table row or
// one of these (tests/config/test_options.cpp checks).
struct ExternalVariable {
  const char* name;
  const char* meaning;
};
const std::vector<ExternalVariable>& external_variables();

// docs/configuration.md: every row of the table (environment name, flag,
// values, each preset's value where it differs from the baseline's) and the
// external variables, as Markdown. `pgolf config --reference` prints it; a
// test fails when the file is stale.
std::string options_reference();

// Applies every environment variable of the table that is set.
void apply_environment(Config& config);

// Collects --preset and every table flag on `app`. After app.parse(), call
// resolve() to build the config: preset, then environment, then flags, then
// validate().
class ConfigFlags {
 public:
  explicit ConfigFlags(CLI::App& app, std::string default_preset = "baseline");
  ConfigFlags(const ConfigFlags&) = delete;  // CLI11 keeps pointers into this object
  ConfigFlags& operator=(const ConfigFlags&) = delete;
  Config resolve() const;
  // True if the field `key` was given by a flag or an environment variable
  // (i.e. it should override a value read from an artifact).
  bool explicitly_set(const std::string& key) const;

 private:
  CLI::App& app_;
  std::string preset_;
  std::vector<std::string> keys_;
  std::vector<std::string> envs_;
  std::vector<std::string> flags_;
  std::vector<std::string> raw_;  // one slot per table row, filled by CLI11
};

}  // namespace pgolf
