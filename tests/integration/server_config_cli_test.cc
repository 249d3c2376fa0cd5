// tensorpagerd's configuration as an operator meets it: --print_config,
// TENSORPAGER_* environment variables, a --config YAML file, their
// precedence, and a running server that took its settings from the file.
#include <gmock/gmock.h>

#include <fstream>

#include "tests/integration/pager_fixture.h"
#include "tests/integration/run_command.h"
#include "tests/testing/temp_dir.h"

namespace tensorpager::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

class ServerConfigCliTest : public ::testing::Test {
 protected:
  std::string WriteConfig(const std::string& text) {
    const std::string path = dir_.Sub("tensorpager.yaml");
    std::ofstream(path) << text;
    return path;
  }

  CommandResult Server(std::vector<std::string> args,
                       std::map<std::string, std::optional<std::string>> env) {
    args.insert(args.begin(), ServerProcess::BinaryPath());
    CommandOptions options;
    options.env = std::move(env);
    // Settings of the caller's environment must not leak into the test.
    for (const char* name :
         {"TENSORPAGER_CONFIG", "TENSORPAGER_ALGORITHM",
          "TENSORPAGER_RAM_BUDGET", "TENSORPAGER_GRPC_ADDRESS",
          "TENSORPAGER_DATA_DIR"}) {
      options.env.try_emplace(name, std::nullopt);
    }
    return RunCommand(std::move(args), options);
  }

  TempDir dir_;
};

TEST_F(ServerConfigCliTest, PrintConfigShowsLayeredValuesAndTheirSources) {
  const std::string config = WriteConfig(
      "algorithm: clock\n"
      "ram_budget: 96MiB\n"
      "grpc_address: 127.0.0.1:7000\n");
  CommandResult r = Server(
      {"--print_config", "--grpc_address=127.0.0.1:0"},
      {{"TENSORPAGER_CONFIG", config}, {"TENSORPAGER_ALGORITHM", "adaptive"}});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_THAT(
      r.out,
      AllOf(HasSubstr("algorithm: adaptive  # environment: "
                      "TENSORPAGER_ALGORITHM"),
            HasSubstr("ram_budget: 96MiB  # config file: " + config + ":2"),
            HasSubstr("grpc_address: 127.0.0.1:0  # command line"),
            HasSubstr("swap_threshold: 0.75  # default")));
}

TEST_F(ServerConfigCliTest, BadSettingsExitWith2AndSayWhere) {
  CommandResult unknown =
      Server({"--print_config"},
             {{"TENSORPAGER_CONFIG", WriteConfig("ram_budgte: 1GiB\n")}});
  EXPECT_EQ(unknown.exit_code, 2) << unknown;
  EXPECT_THAT(unknown.err, AllOf(HasSubstr("unknown key 'ram_budgte'"),
                                 HasSubstr("did you mean 'ram_budget'")));

  CommandResult bad_env =
      Server({"--print_config"}, {{"TENSORPAGER_ALGORITHM", "fifo"}});
  EXPECT_EQ(bad_env.exit_code, 2) << bad_env;
  EXPECT_THAT(bad_env.err, AllOf(HasSubstr("--algorithm=fifo is unknown"),
                                 HasSubstr("from TENSORPAGER_ALGORITHM")));

  CommandResult bad_codec =
      Server({"--print_config"},
             {{"TENSORPAGER_CONFIG",
               WriteConfig("compression_region_types: {KV_CACHE: brotli}\n")}});
  EXPECT_EQ(bad_codec.exit_code, 2) << bad_codec;
  EXPECT_THAT(bad_codec.err, AllOf(HasSubstr("--compression_region_types"),
                                   HasSubstr("needs =none, lz4 or zstd")));
  CommandResult bad_level =
      Server({"--print_config", "--compression_level=12"}, {});
  EXPECT_EQ(bad_level.exit_code, 2) << bad_level;
  EXPECT_THAT(bad_level.err, HasSubstr("compression level must be 1"));

  CommandResult missing =
      Server({"--print_config", "--config=" + dir_.Sub("absent.yaml")}, {});
  EXPECT_EQ(missing.exit_code, 2) << missing;
  EXPECT_THAT(missing.err, HasSubstr("absent.yaml"));
}

class ConfiguredServerTest : public PagerTest {};

TEST_F(ConfiguredServerTest, ServerRunsWithSettingsFromTheConfigFile) {
  TempDir dir;
  const std::string config = dir.Sub("tensorpager.yaml");
  std::ofstream(config) << "algorithm: clock\n"
                           "max_block_size: 8MiB\n"
                           "swap_threshold: 0.9\n"
                           "swap_target: 0.5\n";
  StartServer({"--config=" + config, "--swap_target=0.6"});
  auto status = client_->Status();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->algorithm(), v1::CLOCK);
  EXPECT_EQ(status->max_block_bytes(), 8u << 20);
  EXPECT_DOUBLE_EQ(status->swap_threshold(), 0.9);
  EXPECT_DOUBLE_EQ(status->swap_target(), 0.6) << "the flag wins";
}

}  // namespace
}  // namespace tensorpager::testing
