// The tp-sim binary: --help documents every flag, generate + replay work
// end to end, bad input fails with a message and exit status 2.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

namespace {

struct CommandResult {
  int status = -1;
  std::string output;  // stdout and stderr together
};

CommandResult RunTpSim(const std::string& args) {
  // The build passes the binary's path (TP_SIM_PATH).
  const std::string binary = TP_SIM_PATH;
  CommandResult run;
  FILE* pipe = popen(absl::StrCat(binary, " ", args, " 2>&1").c_str(), "r");
  if (pipe == nullptr) return run;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) {
    run.output.append(buffer, n);
  }
  const int status = pclose(pipe);
  run.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

class TpSimCliTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat("tp_sim_cli_test_", getpid());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path dir_;
};

TEST_F(TpSimCliTest, HelpExplainsEveryFlag) {
  const CommandResult run = RunTpSim("--help");
  ASSERT_EQ(run.status, 1) << run.output;  // absl exits 1 after help
  for (const char* flag : {"trace", "policies", "cache_sizes", "capacity_hint",
                           "format", "generate", "out", "requests", "objects",
                           "zipf_alpha", "mixed_sizes", "noise", "seed"}) {
    EXPECT_NE(run.output.find(absl::StrCat("-", flag, " (")), std::string::npos)
        << flag << " is not documented:\n"
        << run.output;
  }
}

TEST_F(TpSimCliTest, GeneratesAndReplaysATrace) {
  const std::string trace = (dir_ / "loop.csv").string();
  CommandResult run =
      RunTpSim(absl::StrCat("--generate=loop --objects=200 "
                            "--requests=4000 --out=",
                            trace));
  ASSERT_EQ(run.status, 0) << run.output;
  ASSERT_TRUE(std::filesystem::exists(trace));

  run = RunTpSim(absl::StrCat("--format=csv --cache_sizes=10%,50 ", trace));
  ASSERT_EQ(run.status, 0) << run.output;
  std::vector<std::string> lines =
      absl::StrSplit(run.output, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 1u + 2 * 3) << run.output;  // header + rows
  EXPECT_EQ(lines[0].rfind("trace,cache_size,capacity_bytes,policy", 0), 0u);
  // 10% of 200 one-byte objects is 20 bytes; LRU misses every request.
  EXPECT_NE(run.output.find("loop.csv,10%,20,LRU,4000,1.000000,1.000000"),
            std::string::npos)
      << run.output;
  EXPECT_NE(run.output.find(",ADAPTIVE,"), std::string::npos);
}

TEST_F(TpSimCliTest, BadInputFailsWithAMessage) {
  CommandResult run = RunTpSim("--cache_sizes=lots /nonexistent.csv");
  EXPECT_EQ(run.status, 2);
  EXPECT_NE(run.output.find("cache size 'lots'"), std::string::npos)
      << run.output;

  run = RunTpSim("--policies=mru /nonexistent.csv");
  EXPECT_EQ(run.status, 2);
  EXPECT_NE(run.output.find("'mru' is not lru, clock or adaptive"),
            std::string::npos)
      << run.output;

  run = RunTpSim((dir_ / "missing.csv").string());
  EXPECT_EQ(run.status, 1);
  EXPECT_NE(run.output.find("cannot open trace"), std::string::npos)
      << run.output;

  run = RunTpSim("--generate=zipf");
  EXPECT_EQ(run.status, 2);
  EXPECT_NE(run.output.find("--out"), std::string::npos) << run.output;

  run = RunTpSim("");
  EXPECT_EQ(run.status, 2);
  EXPECT_NE(run.output.find("no trace given"), std::string::npos);
}

}  // namespace
