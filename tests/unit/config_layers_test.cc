// Layering of tensorpagerd's settings: command line > environment > config
// file > defaults, and errors that say which source holds the bad value.
// Each test restores the flags it changes (absl::FlagSaver).
#include "server/config/config_layers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/str_cat.h"
#include "server/config/config_file.h"
#include "server/profile/hardware_profile.h"
#include "storage/base/byte_size.h"
#include "tests/testing/temp_dir.h"

ABSL_DECLARE_FLAG(std::string, io_engine);
ABSL_DECLARE_FLAG(bool, durable_writes);

namespace tensorpager::server {
namespace {

using ::testing::HasSubstr;

class ConfigLayersTest : public ::testing::Test {
 protected:
  // Writes the config file and returns its path.
  std::string WriteConfig(const std::string& text) {
    const std::string path = dir_.Sub("tensorpager.yaml");
    std::ofstream(path) << text;
    return path;
  }

  // Loads with `argv` (flags already applied by the test, as
  // absl::ParseCommandLine would) and the fake environment.
  absl::StatusOr<EffectiveConfig> Load(std::vector<std::string> args) {
    args.insert(args.begin(), "tensorpagerd");
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    auto lookup =
        [this](const std::string& name) -> std::optional<std::string> {
      auto it = env_.find(name);
      if (it == env_.end()) return std::nullopt;
      return it->second;
    };
    return LoadEffectiveConfig(argv, lookup);
  }

  const EffectiveSetting& Setting(const EffectiveConfig& c,
                                  const std::string& name) {
    for (const EffectiveSetting& s : c.settings) {
      if (s.name == name) return s;
    }
    ADD_FAILURE() << "no setting " << name;
    return c.settings.front();
  }

  absl::FlagSaver saver_;
  testing::TempDir dir_;
  std::map<std::string, std::string> env_;
};

TEST_F(ConfigLayersTest, SettingsAreTheServerFlags) {
  const std::set<std::string> names = SettingNames();
  EXPECT_TRUE(names.count("ram_budget"));
  EXPECT_TRUE(names.count("grpc_address"));
  EXPECT_FALSE(names.count("config")) << "--config is not a setting";
  EXPECT_FALSE(names.count("print_config"));
  EXPECT_FALSE(names.count("help"));
  EXPECT_EQ(EnvironmentVariableFor("ram_budget"), "TENSORPAGER_RAM_BUDGET");
}

TEST_F(ConfigLayersTest, FlagsBeatEnvironmentBeatsFileBeatsDefaults) {
  const std::string path = WriteConfig(
      "algorithm: clock\n"
      "io_engine: threads\n"
      "ram_budget: 1GiB\n"
      "swap_threshold: 0.8\n");
  env_["TENSORPAGER_ALGORITHM"] = "adaptive";
  env_["TENSORPAGER_IO_ENGINE"] = "io_uring";
  absl::SetFlag(&FLAGS_config, path);
  // On the command line at its default value: still wins over env and file.
  absl::SetFlag(&FLAGS_io_engine, "auto");

  auto c = Load({"--config=" + path, "--io_engine=auto"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->config.io_engine, "auto");
  EXPECT_EQ(c->config.algorithm, "adaptive");
  EXPECT_EQ(c->config.ram_budget_bytes, 1ull << 30);
  EXPECT_DOUBLE_EQ(c->config.swap_threshold, 0.8);
  EXPECT_DOUBLE_EQ(c->config.swap_target, 0.65);
  EXPECT_EQ(c->config_file, path);

  EXPECT_EQ(Setting(*c, "io_engine").source, SettingSource::kCommandLine);
  EXPECT_EQ(Setting(*c, "io_engine").origin, "--io_engine");
  EXPECT_EQ(Setting(*c, "algorithm").source, SettingSource::kEnvironment);
  EXPECT_EQ(Setting(*c, "algorithm").origin, "TENSORPAGER_ALGORITHM");
  EXPECT_EQ(Setting(*c, "ram_budget").source, SettingSource::kConfigFile);
  EXPECT_EQ(Setting(*c, "ram_budget").origin, path + ":3");
  EXPECT_EQ(Setting(*c, "swap_target").source, SettingSource::kDefault);
}

TEST_F(ConfigLayersTest, NegatedBooleanFlagCountsAsCommandLine) {
  env_["TENSORPAGER_DURABLE_WRITES"] = "true";
  absl::SetFlag(&FLAGS_durable_writes, false);
  auto c = Load({"--nodurable_writes"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->config.durable_writes);

  auto from_env = Load({});
  ASSERT_TRUE(from_env.ok()) << from_env.status();
  EXPECT_TRUE(from_env->config.durable_writes);
}

TEST_F(ConfigLayersTest, ConfigFileFromEnvironmentAndMapValues) {
  env_["TENSORPAGER_CONFIG"] =
      WriteConfig("durable_region_types: {WEIGHT: true, TEMPORARY: false}\n");
  auto c = Load({});
  ASSERT_TRUE(c.ok()) << c.status();
  const int weight = static_cast<int>(storage::RegionType::kWeight);
  const int temporary = static_cast<int>(storage::RegionType::kTemporary);
  EXPECT_EQ(c->config.durable_by_region[weight], true);
  EXPECT_EQ(c->config.durable_by_region[temporary], false);
}

TEST_F(ConfigLayersTest, EmptyEnvironmentValueIsAValue) {
  env_["TENSORPAGER_METRICS_ADDRESS"] = "";
  auto c = Load({});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->config.metrics_address, "") << "empty disables /metrics";
}

TEST_F(ConfigLayersTest, UnrelatedTensorpagerVariablesAreIgnored) {
  // What Kubernetes injects for a Service named "tensorpager".
  env_["TENSORPAGER_PORT"] = "tcp://10.0.0.1:50051";
  env_["TENSORPAGER_SERVICE_HOST"] = "10.0.0.1";
  auto c = Load({});
  EXPECT_TRUE(c.ok()) << c.status();
}

TEST_F(ConfigLayersTest, BadEnvironmentValueNamesTheVariable) {
  env_["TENSORPAGER_RAM_BUDGET"] = "lots";
  auto c = Load({});
  ASSERT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(), HasSubstr("TENSORPAGER_RAM_BUDGET"));
  EXPECT_THAT(c.status().message(), HasSubstr("'lots'"));
}

TEST_F(ConfigLayersTest, BadFileValueNamesFileAndLine) {
  absl::SetFlag(&FLAGS_config, WriteConfig("data_dir: /x\nmax_swap_size: "
                                           "12 parsecs\n"));
  auto c = Load({});
  ASSERT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(), HasSubstr("tensorpager.yaml:2"));
  EXPECT_THAT(c.status().message(), HasSubstr("max_swap_size"));
}

TEST_F(ConfigLayersTest, UnknownFileKeyIsAnError) {
  absl::SetFlag(&FLAGS_config, WriteConfig("ram_budgte: 1GiB\n"));
  auto c = Load({});
  ASSERT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(), HasSubstr("unknown key 'ram_budgte'"));
}

TEST_F(ConfigLayersTest, MissingConfigFileIsNotFound) {
  absl::SetFlag(&FLAGS_config, dir_.Sub("nope.yaml"));
  auto c = Load({});
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(c.status().message(), HasSubstr("nope.yaml"));
}

TEST_F(ConfigLayersTest, ValidationErrorSaysWhereTheValueCameFrom) {
  absl::SetFlag(&FLAGS_config, WriteConfig("swap_target: 0.9\n"));
  auto c = Load({});
  ASSERT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(), HasSubstr("--swap_target"));
  EXPECT_THAT(
      c.status().message(),
      HasSubstr("swap_target=0.9 from " + dir_.Sub("tensorpager.yaml") + ":1"));
}

TEST_F(ConfigLayersTest, PrintedConfigReproducesTheSettings) {
  env_["TENSORPAGER_ALGORITHM"] = "clock";
  env_["TENSORPAGER_METRICS_ADDRESS"] = "";
  absl::SetFlag(&FLAGS_config, WriteConfig("ram_budget: 96MiB\n"));
  auto c = Load({});
  ASSERT_TRUE(c.ok()) << c.status();
  const std::string yaml = EffectiveConfigYaml(*c);
  EXPECT_THAT(yaml, HasSubstr("environment: TENSORPAGER_ALGORITHM"));
  EXPECT_THAT(yaml, HasSubstr("config file: " + dir_.Sub("tensorpager.yaml")));

  auto parsed = ParseConfigYaml(yaml, "printed", SettingNames());
  ASSERT_TRUE(parsed.ok()) << parsed.status() << "\n" << yaml;
  ASSERT_EQ(parsed->size(), c->settings.size());
  for (const EffectiveSetting& s : c->settings) {
    EXPECT_EQ(parsed->at(s.name).value, s.value) << s.name;
  }
  EXPECT_EQ(parsed->at("algorithm").value, "clock");
  EXPECT_EQ(parsed->at("metrics_address").value, "");
  EXPECT_EQ(base::ParseByteSize(parsed->at("ram_budget").value).value(),
            96ull << 20);
}

// --ram_budget's help quotes what the profiles do when it is left at 0.
TEST(RamBudgetHelpTest, QuotesEveryProfilesShare) {
  const absl::CommandLineFlag* flag = absl::FindCommandLineFlag("ram_budget");
  ASSERT_NE(flag, nullptr);
  const std::string help = flag->Help();
  for (ProfileKind kind : {ProfileKind::kNvme, ProfileKind::kSsd,
                           ProfileKind::kHdd, ProfileKind::kLowMemory}) {
    HardwareInfo hardware;
    const double share =
        ChooseProfile(kind, hardware).defaults.ram_budget_fraction;
    hardware.gpus = {"gpu"};
    const double with_gpus =
        ChooseProfile(kind, hardware).defaults.ram_budget_fraction;
    EXPECT_THAT(help, HasSubstr(absl::StrCat(std::lround(share * 100), "% (")));
    EXPECT_THAT(help, HasSubstr(ProfileKindName(kind)));
    EXPECT_THAT(help,
                HasSubstr(absl::StrCat(std::lround((share - with_gpus) * 100),
                                       " points less with GPUs")));
  }
}

}  // namespace
}  // namespace tensorpager::server
