// tensorpagerd's configuration as an operator meets it: --print_config,
// TENSORPAGER_* environment variables, a --config YAML file, their
// precedence, a running server that took its settings from the file, and
// what it makes of the paths it is given (--data_dir, --ready_file).
#include <gmock/gmock.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_format.h"
#include "tests/integration/pager_fixture.h"
#include "tests/integration/run_command.h"
#include "tests/testing/fifo_reader.h"
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

  // Settings that need others name what is missing.
  CommandResult scope =
      Server({"--print_config", "--encryption_scope=tenants"},
             {{"TENSORPAGER_ENCRYPTION_KEY_FILE", dir_.Sub("keys")}});
  EXPECT_EQ(scope.exit_code, 2) << scope;
  EXPECT_THAT(scope.err, HasSubstr("give --encryption_key_file and "
                                   "--tenants_file too"));
  CommandResult bad_scope =
      Server({"--print_config", "--encryption_scope=some"}, {});
  EXPECT_EQ(bad_scope.exit_code, 2) << bad_scope;
  EXPECT_THAT(bad_scope.err, HasSubstr("use all or tenants"));
  CommandResult metrics_tls = Server({"--print_config", "--metrics_tls"}, {});
  EXPECT_EQ(metrics_tls.exit_code, 2) << metrics_tls;
  EXPECT_THAT(metrics_tls.err, HasSubstr("give --tls_cert_file"));
  CommandResult no_connections =
      Server({"--print_config", "--unix_socket_max_connections_per_uid=0"}, {});
  EXPECT_EQ(no_connections.exit_code, 2) << no_connections;
  EXPECT_THAT(no_connections.err,
              HasSubstr("--unix_socket_max_connections_per_uid must be"));

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

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st.st_mode;
}

// "0700", as ls and chmod write permissions.
std::string PermissionsOf(const std::string& path) {
  return absl::StrFormat("%04o", ModeOf(path) & 07777);
}

TEST(ServerPathsTest, DataDirAndDataFileArePrivateToTheServersUser) {
  absl::StatusOr<std::unique_ptr<ServerProcess>> server =
      ServerProcess::Start({});
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string dir = (*server)->data_dir();
  // Block bytes and ids: another local user may not even list them.
  EXPECT_EQ(PermissionsOf(dir), "0700");
  EXPECT_EQ(PermissionsOf(dir + "/metadata"), "0700");
  EXPECT_TRUE(S_ISREG(ModeOf(dir + "/blocks.dat")));
  EXPECT_EQ(PermissionsOf(dir + "/blocks.dat"), "0600");
}

TEST(ServerPathsTest, AWiderDataDirIsTightenedAtStartWithALogLine) {
  TempDir dir;
  const std::string data = dir.Sub("data");
  ASSERT_EQ(::mkdir(data.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(data.c_str(), 0755), 0);  // whatever the umask
  ServerProcess::Options options;
  options.data_dir = data;
  absl::StatusOr<std::unique_ptr<ServerProcess>> server =
      ServerProcess::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ(PermissionsOf(data), "0700");
  const std::string log = (*server)->Log();
  EXPECT_THAT(log, HasSubstr("tightened " + data + " from mode 0755 to 0700"));
  // A restart finds nothing left to tighten.
  ASSERT_TRUE((*server)->Restart().ok());
  const std::string both = (*server)->Log();
  EXPECT_EQ(both.find("tightened "), both.rfind("tightened ")) << both;
}

// tensorpagerd with `args`, its output into `log`; killed with the test.
pid_t SpawnServer(std::vector<std::string> args, const std::string& log) {
  args.insert(args.begin(), ServerProcess::BinaryPath());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    std::freopen(log.c_str(), "w", stderr);
    std::freopen(log.c_str(), "a", stdout);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

TEST(ServerPathsTest, ReadyFileFifoIsWrittenInPlace) {
  TempDir dir;
  const std::string fifo = dir.Sub("ready");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  FifoReader reader(fifo);
  const pid_t pid = SpawnServer(
      {"--data_dir=" + dir.Sub("data"), "--grpc_address=127.0.0.1:0",
       "--metrics_address=", "--ready_file=" + fifo},
      dir.Sub("server.log"));
  ASSERT_GT(pid, 0);
  const std::string ready = reader.Finish();
  ::kill(pid, SIGTERM);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  const std::string log = ReadFileBytes(dir.Sub("server.log"));
  EXPECT_TRUE(reader.complete()) << log;
  EXPECT_THAT(ready, AllOf(::testing::StartsWith("grpc_port="),
                           HasSubstr("\nmetrics_port=0\n")))
      << log;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << log;
  // Still the FIFO, and no temporary file beside it.
  EXPECT_TRUE(S_ISFIFO(ModeOf(fifo)));
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    EXPECT_THAT(entry.path().filename().string(),
                ::testing::AnyOf("ready", "data", "server.log"));
  }
}

}  // namespace
}  // namespace tensorpager::testing
