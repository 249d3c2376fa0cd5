// Fuzzes the config file parser (server/config/config_file.h) and the
// layering of the config file and TENSORPAGER_* environment variables over
// the flags (server/config/config_layers.h).
//
// Input: the config file's YAML text, optionally followed by a NUL byte and
// environment lines "NAME=VALUE" (newline-separated). NAME is a setting's
// variable without its TENSORPAGER_ prefix (RAM_BUDGET=8GiB); the harness
// adds the prefix. TENSORPAGER_CONFIG always names the harness's own file.
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "server/config/config_file.h"
#include "server/config/config_layers.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

namespace tps = tensorpager::server;

struct Globals {
  std::set<std::string> settings = tps::SettingNames();
  std::string config_path;
};

Globals& G() {
  static Globals* g = [] {
    auto* g = new Globals;
    g->config_path = tensorpager::fuzz::ScratchDir() + "/tensorpagerd.yaml";
    return g;
  }();
  return *g;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Globals& g = G();
  TP_FUZZ_CHECK(!g.settings.empty());
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  const absl::string_view yaml = input.substr(0, nul);
  const absl::string_view env_text =
      nul == absl::string_view::npos ? "" : input.substr(nul + 1);

  // The parser alone.
  absl::StatusOr<tps::ConfigFileValues> parsed =
      tps::ParseConfigYaml(yaml, "fuzz.yaml", g.settings);
  if (parsed.ok()) {
    for (const auto& [key, value] : *parsed) {
      TP_FUZZ_CHECK(g.settings.count(key) == 1);
      TP_FUZZ_CHECK(value.line >= 1);
    }
  } else {
    TP_FUZZ_CHECK(absl::IsInvalidArgument(parsed.status()));
  }

  // The layers: flags (none given) > environment > config file > defaults.
  std::map<std::string, std::string> environment;
  for (absl::string_view line : absl::StrSplit(env_text, '\n')) {
    const size_t eq = line.find('=');
    if (eq == absl::string_view::npos || eq == 0) continue;
    environment[absl::StrCat("TENSORPAGER_", line.substr(0, eq))] =
        std::string(line.substr(eq + 1));
  }
  environment.erase("TENSORPAGER_CONFIG");
  if (!yaml.empty()) {
    std::ofstream out(g.config_path, std::ios::trunc | std::ios::binary);
    out.write(yaml.data(), static_cast<std::streamsize>(yaml.size()));
    out.close();
    if (!out) return 0;
    environment["TENSORPAGER_CONFIG"] = g.config_path;
  }
  auto lookup = [&](const std::string& name) -> std::optional<std::string> {
    auto it = environment.find(name);
    if (it == environment.end()) return std::nullopt;
    return it->second;
  };
  char program[] = "tensorpagerd";
  char* argv[] = {program};
  absl::StatusOr<tps::EffectiveConfig> effective =
      tps::LoadEffectiveConfig(argv, lookup);
  if (effective.ok()) {
    TP_FUZZ_CHECK(effective->settings.size() == g.settings.size());
    // What --print_config writes reads back as a config file.
    const std::string printed = tps::EffectiveConfigYaml(*effective);
    absl::StatusOr<tps::ConfigFileValues> again =
        tps::ParseConfigYaml(printed, "printed", g.settings);
    TP_FUZZ_CHECK(again.ok());
  } else {
    TP_FUZZ_CHECK(!effective.status().message().empty());
  }
  // Every setting back to its default for the next input (quietly, unlike
  // absl::FlagSaver).
  for (const std::string& name : g.settings) {
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag->CurrentValue() == flag->DefaultValue()) continue;
    std::string error;
    TP_FUZZ_CHECK(flag->ParseFrom(flag->DefaultValue(), &error));
  }
  return 0;
}
