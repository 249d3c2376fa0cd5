#include "server/config/config_layers.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "server/config/config_file.h"

ABSL_FLAG(std::string, config, "",
          "YAML config file mapping setting names (the flag names) to values, "
          "e.g. 'ram_budget: 8GiB'. Also TENSORPAGER_CONFIG. Precedence: "
          "flags > TENSORPAGER_<FLAG_NAME> environment variables > config "
          "file > defaults.");
ABSL_FLAG(bool, print_config, false,
          "Print the effective configuration as YAML, with where each value "
          "came from, and exit.");

namespace tensorpager::server {
namespace {

constexpr absl::string_view kSettingsFile = "server/config/server_config.cc";
constexpr absl::string_view kConfigVariable = "TENSORPAGER_CONFIG";

absl::CommandLineFlag& SettingFlag(const std::string& name) {
  // SettingNames() only returns registered flags.
  return *absl::FindCommandLineFlag(name);
}

// Settings the command line set: named in argv (also as --noNAME for
// booleans), or changed from their default without being named, which is
// what a --flagfile does.
std::set<std::string> SetOnCommandLine(absl::Span<char* const> argv,
                                       const std::set<std::string>& settings) {
  std::set<std::string> named;
  for (size_t i = 1; i < argv.size(); ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") break;
    if (!absl::ConsumePrefix(&arg, "-")) continue;
    absl::ConsumePrefix(&arg, "-");
    absl::string_view name = arg.substr(0, arg.find('='));
    if (settings.count(std::string(name)) != 0) {
      named.insert(std::string(name));
    } else if (absl::ConsumePrefix(&name, "no") &&
               settings.count(std::string(name)) != 0) {
      named.insert(std::string(name));
    }
  }
  for (const std::string& name : settings) {
    const absl::CommandLineFlag& flag = SettingFlag(name);
    if (flag.CurrentValue() != flag.DefaultValue()) named.insert(name);
  }
  return named;
}

absl::Status SetFromText(const std::string& name, const std::string& text,
                         const std::string& origin) {
  std::string error;
  if (!SettingFlag(name).ParseFrom(text, &error)) {
    return absl::InvalidArgumentError(absl::StrCat(
        origin, ": bad value '", text, "' for ", name, ": ", error));
  }
  return absl::OkStatus();
}

// Validation messages name flags ("--swap_target must be ..."); when such a
// value came from the environment or the config file, say so.
std::string WithOrigins(absl::string_view message,
                        const std::vector<EffectiveSetting>& settings) {
  std::string out(message);
  for (const EffectiveSetting& s : settings) {
    if (s.source == SettingSource::kCommandLine ||
        s.source == SettingSource::kDefault) {
      continue;
    }
    const std::string mention = absl::StrCat("--", s.name);
    for (size_t pos = message.find(mention); pos != absl::string_view::npos;
         pos = message.find(mention, pos + 1)) {
      const size_t end = pos + mention.size();
      if (end < message.size() &&
          (absl::ascii_isalnum(static_cast<unsigned char>(message[end])) ||
           message[end] == '_')) {
        continue;
      }
      absl::StrAppend(&out, " (", s.name, "=", s.value, " from ", s.origin,
                      ")");
      break;
    }
  }
  return out;
}

const char* SourceName(SettingSource source) {
  switch (source) {
    case SettingSource::kDefault:
      return "default";
    case SettingSource::kConfigFile:
      return "config file";
    case SettingSource::kEnvironment:
      return "environment";
    case SettingSource::kCommandLine:
      return "command line";
  }
  return "";
}

}  // namespace

std::optional<std::string> ProcessEnvironment(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

std::string EnvironmentVariableFor(absl::string_view setting) {
  return absl::StrCat("TENSORPAGER_", absl::AsciiStrToUpper(setting));
}

std::set<std::string> SettingNames() {
  std::set<std::string> names;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (absl::EndsWith(flag->Filename(), kSettingsFile)) {
      names.insert(std::string(name));
    }
  }
  return names;
}

absl::StatusOr<EffectiveConfig> LoadEffectiveConfig(
    absl::Span<char* const> argv, EnvironmentLookup environment) {
  const std::set<std::string> settings = SettingNames();
  const std::set<std::string> from_command_line =
      SetOnCommandLine(argv, settings);

  EffectiveConfig effective;
  effective.config_file = absl::GetFlag(FLAGS_config);
  if (effective.config_file.empty()) {
    effective.config_file =
        environment(std::string(kConfigVariable)).value_or("");
  }
  ConfigFileValues file_values;
  if (!effective.config_file.empty()) {
    absl::StatusOr<ConfigFileValues> read =
        ReadConfigFile(effective.config_file, settings);
    if (!read.ok()) return read.status();
    file_values = *std::move(read);
  }

  for (const std::string& name : settings) {
    EffectiveSetting s;
    s.name = name;
    const std::string variable = EnvironmentVariableFor(name);
    if (from_command_line.count(name) != 0) {
      s.source = SettingSource::kCommandLine;
      s.origin = absl::StrCat("--", name);
    } else if (std::optional<std::string> text = environment(variable)) {
      if (absl::Status st = SetFromText(name, *text, variable); !st.ok()) {
        return st;
      }
      s.source = SettingSource::kEnvironment;
      s.origin = variable;
    } else if (auto it = file_values.find(name); it != file_values.end()) {
      s.origin = absl::StrCat(effective.config_file, ":", it->second.line);
      if (absl::Status st = SetFromText(name, it->second.value, s.origin);
          !st.ok()) {
        return st;
      }
      s.source = SettingSource::kConfigFile;
    } else {
      s.source = SettingSource::kDefault;
      s.origin = "default";
    }
    s.value = SettingFlag(name).CurrentValue();
    effective.settings.push_back(std::move(s));
  }

  std::set<std::string> given;
  for (const EffectiveSetting& s : effective.settings) {
    if (s.source != SettingSource::kDefault) given.insert(s.name);
  }
  absl::StatusOr<ServerConfig> config = ConfigFromFlags(std::move(given));
  if (!config.ok()) {
    return absl::Status(
        config.status().code(),
        WithOrigins(config.status().message(), effective.settings));
  }
  effective.config = *std::move(config);
  return effective;
}

std::string EffectiveConfigYaml(const EffectiveConfig& effective) {
  YAML::Emitter out;
  out << YAML::Comment(absl::StrCat(
      "tensorpagerd ", TENSORPAGER_VERSION,
      " effective configuration. Precedence: flags > TENSORPAGER_* "
      "environment > config file",
      effective.config_file.empty()
          ? " (none)"
          : absl::StrCat(" (", effective.config_file, ")"),
      " > defaults."));
  out << YAML::Newline
      << YAML::Comment(
             "At startup the hardware profile (--profile) replaces settings "
             "marked 'default' with its own; the server logs its choice and "
             "tpctl status shows it.");
  out << YAML::Newline << YAML::BeginMap;
  for (const EffectiveSetting& s : effective.settings) {
    std::string comment =
        s.source == SettingSource::kDefault
            ? std::string("default")
            : absl::StrCat(SourceName(s.source), ": ", s.origin);
    if (s.name == "ram_budget" && effective.config.ram_budget_bytes == 0) {
      absl::StrAppend(&comment, "; 0 = the profile's share of memory");
    }
    out << YAML::Key << s.name << YAML::Value << s.value
        << YAML::Comment(comment);
  }
  out << YAML::EndMap;
  return absl::StrCat(out.c_str(), "\n");
}

}  // namespace tensorpager::server
