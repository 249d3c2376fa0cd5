// The tensorpagerd config file: a YAML mapping from setting names (the flag
// names, e.g. ram_budget) to values written as the flag would take them.
//
//   data_dir: /var/lib/tensorpager
//   ram_budget: 8GiB
//   durable_region_types: {WEIGHT: true, TEMPORARY: false}
//
// A mapping value becomes "K=V,K=V" and a sequence "A,B", the list syntax of
// the flags; the flag's own parser then checks the value.
#ifndef TENSORPAGER_SERVER_CONFIG_CONFIG_FILE_H_
#define TENSORPAGER_SERVER_CONFIG_CONFIG_FILE_H_

#include <map>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tensorpager::server {

// One value of a config file, in flag syntax, and where it was written.
struct ConfigFileValue {
  std::string value;
  int line = 0;  // 1-based
};

// Setting name -> value.
using ConfigFileValues = std::map<std::string, ConfigFileValue>;

// Parses config file text. `origin` (the file's path) prefixes every error
// message. Unknown keys (with the closest known name as a hint), keys given
// twice, empty values, nested values and YAML syntax errors are
// INVALID_ARGUMENT naming the key and line. An empty document sets nothing.
absl::StatusOr<ConfigFileValues> ParseConfigYaml(
    absl::string_view text, absl::string_view origin,
    const std::set<std::string>& known_settings);

// Reads and parses the file at `path`: NOT_FOUND when it does not exist,
// PERMISSION_DENIED when it cannot be read, else as ParseConfigYaml.
absl::StatusOr<ConfigFileValues> ReadConfigFile(
    const std::string& path, const std::set<std::string>& known_settings);

}  // namespace tensorpager::server

#endif  // TENSORPAGER_SERVER_CONFIG_CONFIG_FILE_H_
