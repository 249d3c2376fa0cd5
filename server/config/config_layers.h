// The effective configuration of tensorpagerd, layered from four sources:
//
//   command-line flags  >  TENSORPAGER_<SETTING> environment variables
//                       >  the config file (--config / TENSORPAGER_CONFIG)
//                       >  built-in defaults
//
// Every setting is a flag of server/config/server_config.cc; its environment
// variable is its name upper-cased (ram_budget: TENSORPAGER_RAM_BUDGET) and
// its config file key is its name. Values are parsed by the flag's own
// parser whatever their source, so they are written the same everywhere.
// TENSORPAGER_* variables that name no setting are ignored: Kubernetes
// injects some (TENSORPAGER_PORT, TENSORPAGER_SERVICE_HOST) for a Service
// named tensorpager.
#ifndef TENSORPAGER_SERVER_CONFIG_CONFIG_LAYERS_H_
#define TENSORPAGER_SERVER_CONFIG_CONFIG_LAYERS_H_

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "server/config/server_config.h"

ABSL_DECLARE_FLAG(std::string, config);
ABSL_DECLARE_FLAG(bool, print_config);

namespace tensorpager::server {

// Where a setting's effective value came from.
enum class SettingSource { kDefault, kConfigFile, kEnvironment, kCommandLine };

struct EffectiveSetting {
  std::string name;
  std::string value;  // as the flag spells it
  SettingSource source = SettingSource::kDefault;
  // "--ram_budget", "TENSORPAGER_RAM_BUDGET", "/etc/tp.yaml:3" or "default".
  std::string origin;
};

struct EffectiveConfig {
  ServerConfig config;
  std::string config_file;                 // empty when none was given
  std::vector<EffectiveSetting> settings;  // sorted by name
};

// Returns the value of an environment variable, std::nullopt when unset.
using EnvironmentLookup =
    absl::FunctionRef<std::optional<std::string>(const std::string&)>;

// The process environment (getenv).
std::optional<std::string> ProcessEnvironment(const std::string& name);

// "TENSORPAGER_RAM_BUDGET" for "ram_budget".
std::string EnvironmentVariableFor(absl::string_view setting);

// The settings: names of the flags defined in server/config/server_config.cc.
std::set<std::string> SettingNames();

// Call after absl::ParseCommandLine with the original argv. Sets every flag
// the command line left alone from the environment, else from the config
// file, then builds and validates the config. Errors are INVALID_ARGUMENT
// (or the config file's read error) and name the source of the bad value.
absl::StatusOr<EffectiveConfig> LoadEffectiveConfig(
    absl::Span<char* const> argv, EnvironmentLookup environment);

// The effective settings as a YAML config file that reproduces them, each
// with a comment saying where its value came from (--print_config).
std::string EffectiveConfigYaml(const EffectiveConfig& effective);

}  // namespace tensorpager::server

#endif  // TENSORPAGER_SERVER_CONFIG_CONFIG_LAYERS_H_
