// tpctl, the operator CLI, as a subprocess against a real tensorpagerd:
// every command, its output (tables and --json), and its exit codes
// (0 ok, 1 request failed, 2 usage error, 3 server unavailable).
#include <gmock/gmock.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "tests/integration/pager_fixture.h"
#include "tests/integration/run_command.h"
#include "tests/testing/fifo_reader.h"
#include "tests/testing/temp_dir.h"

namespace tensorpager::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

std::string TpctlPath() {
  const char* dir = std::getenv("TP_BINARY_DIR");
  return std::string(dir != nullptr ? dir : TP_BINARY_DIR) +
         "/client_sdk/tpctl/tpctl";
}

// Runs tpctl with `args` and stdin `input`; the caller's
// TENSORPAGER_TARGET must not redirect the test.
CommandResult Tpctl(std::vector<std::string> args,
                    const std::string& input = "") {
  args.insert(args.begin(), TpctlPath());
  CommandOptions options;
  options.input = input;
  options.env["TENSORPAGER_TARGET"] = std::nullopt;
  return RunCommand(std::move(args), options);
}

std::string ReadAll(const std::string& path) { return ReadFileBytes(path); }

TEST(TpctlUsageTest, HelpListsEveryCommandAndExitCodes) {
  CommandResult r = Tpctl({"--help"});
  ASSERT_EQ(r.exit_code, 0) << r;
  for (const char* command :
       {"status", "list", "info", "put", "get", "swap-out", "swap-in", "pin",
        "unpin", "unregister", "lookup", "rm", "health", "watch", "policy"}) {
    EXPECT_THAT(r.out, HasSubstr(absl::StrCat("  ", command, " "))) << command;
  }
  EXPECT_THAT(r.out, HasSubstr("Exit codes"));

  CommandResult put = Tpctl({"put", "--help"});
  ASSERT_EQ(put.exit_code, 0) << put;
  EXPECT_THAT(put.out, AllOf(HasSubstr("Usage: tpctl put ID FILE"),
                             HasSubstr("--region_type TYPE"),
                             HasSubstr("--target HOST:PORT")));
  EXPECT_EQ(Tpctl({"help", "put"}).out, put.out);
}

TEST(TpctlUsageTest, MistakesAreUsageErrorsWithExitCode2) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{}, "no command given"},
      {{"frobnicate"}, "unknown command 'frobnicate'"},
      {{"list", "--bogus"}, "unknown option --bogus for 'tpctl list'"},
      {{"put", "only-id"}, "missing arguments; usage: tpctl put ID FILE"},
      {{"status", "extra"}, "too many arguments"},
      {{"list", "--tier", "hot"}, "unknown tier 'hot'; use empty, ram, disk"},
      {{"list", "--limit"}, "--limit needs a value (N)"},
      {{"list", "--pinned", "--unpinned"}, "exclude each other"},
      {{"swap-out"}, "name the blocks (IDs) or give --bytes"},
      {{"swap-in", "--bytes", "lots"}, "--bytes:"},
      {{"--timeout", "soon", "status"}, "--timeout 'soon' is not a duration"},
      {{"policy", "fifo"},
       "unknown algorithm 'fifo'; use lru, clock, adaptive"},
      {{"status", "--json=yes"}, "--json takes no value"},
  };
  for (const auto& [args, message] : cases) {
    CommandResult r = Tpctl(args);
    EXPECT_EQ(r.exit_code, 2) << r;
    EXPECT_THAT(r.err, HasSubstr(message)) << r;
    EXPECT_TRUE(r.out.empty()) << r;
  }
}

TEST(TpctlUsageTest, NoServerIsExitCode3) {
  TempDir dir;
  CommandResult r = Tpctl({"--target", "unix:" + dir.Sub("absent.sock"),
                           "--timeout", "5s", "status"});
  EXPECT_EQ(r.exit_code, 3) << r;
  EXPECT_THAT(r.err, AllOf(HasSubstr("UNAVAILABLE"), HasSubstr("absent.sock")));
}

class TpctlTest : public PagerTest {
 protected:
  // LRU explicitly: the hardware profile may pick another algorithm.
  void SetUp() override {
    StartServer({"--ram_budget=64MiB", "--algorithm=lru"});
  }

  CommandResult Ctl(std::vector<std::string> args,
                    const std::string& input = "") {
    args.insert(args.begin(), {"--target", server_->target()});
    return Tpctl(args, input);
  }

  TempDir files_;
};

TEST_F(TpctlTest, PutGetSwapPinListAndUnregister) {
  const std::string data = PatternBytes(3 * 1024 * 1024, 1);
  const std::string in = files_.Sub("in.bin");
  std::ofstream(in, std::ios::binary) << data;

  CommandResult put =
      Ctl({"put", "kv-0", in, "--region_type", "kv_cache", "--label",
           "model=qwen3-vl", "--dtype", "bfloat16", "--shape", "3,512,1024"});
  ASSERT_EQ(put.exit_code, 0) << put;
  EXPECT_THAT(put.out, HasSubstr("put kv-0: 3.00 MiB, tier ram"));

  CommandResult again = Ctl({"put", "kv-0", in});
  EXPECT_EQ(again.exit_code, 1) << again;
  EXPECT_THAT(again.err,
              AllOf(HasSubstr("ALREADY_EXISTS"), HasSubstr("--replace")));

  CommandResult info = Ctl({"info", "kv-0"});
  ASSERT_EQ(info.exit_code, 0) << info;
  EXPECT_THAT(info.out,
              AllOf(HasSubstr("kv_cache"), HasSubstr("bfloat16"),
                    HasSubstr("[3, 512, 1024]"), HasSubstr("model=qwen3-vl")));

  CommandResult out = Ctl({"swap-out", "kv-0"});
  ASSERT_EQ(out.exit_code, 0) << out;
  EXPECT_THAT(out.out, HasSubstr("swapped out 1 block, 3.00 MiB"));

  CommandResult on_disk = Ctl({"list", "--tier", "disk"});
  ASSERT_EQ(on_disk.exit_code, 0) << on_disk;
  EXPECT_THAT(on_disk.out, AllOf(HasSubstr("ID"), HasSubstr("kv-0"),
                                 HasSubstr("1 block, 3.00 MiB")));
  CommandResult in_ram = Ctl({"list", "--tier", "ram"});
  EXPECT_THAT(in_ram.out, AllOf(Not(HasSubstr("kv-0")), HasSubstr("0 blocks")));

  const std::string back = files_.Sub("back.bin");
  CommandResult get = Ctl({"get", "kv-0", back});
  ASSERT_EQ(get.exit_code, 0) << get;
  EXPECT_THAT(get.out, HasSubstr("swapped in from disk"));
  EXPECT_TRUE(ReadAll(back) == data) << "bytes differ";

  CommandResult pin = Ctl({"pin", "kv-0"});
  ASSERT_EQ(pin.exit_code, 0) << pin;
  CommandResult refused = Ctl({"swap-out", "kv-0"});
  EXPECT_EQ(refused.exit_code, 1) << refused;
  EXPECT_THAT(refused.err, HasSubstr("FAILED_PRECONDITION"));
  CommandResult pinned = Ctl({"list", "--pinned", "--json"});
  ASSERT_EQ(pinned.exit_code, 0) << pinned;
  EXPECT_THAT(pinned.out, AllOf(HasSubstr("\"id\": \"kv-0\""),
                                HasSubstr("\"pinned\": true")));
  ASSERT_EQ(Ctl({"unpin", "kv-0"}).exit_code, 0);

  CommandResult gone = Ctl({"unregister", "kv-0"});
  ASSERT_EQ(gone.exit_code, 0) << gone;
  EXPECT_THAT(gone.out, HasSubstr("unregistered kv-0"));
  CommandResult missing = Ctl({"get", "kv-0", back});
  EXPECT_EQ(missing.exit_code, 1) << missing;
  EXPECT_THAT(missing.err, HasSubstr("tpctl: NOT_FOUND:"));
}

TEST_F(TpctlTest, LookupAndRmByIdsAndPrefix) {
  const std::string in = files_.Sub("page.bin");
  std::ofstream(in, std::ios::binary) << PatternBytes(4096, 3);
  for (const char* id : {"conv-1/0", "conv-1/1", "conv-1/3", "conv-2/0"}) {
    ASSERT_EQ(Ctl({"put", id, in, "--namespace", "qwen"}).exit_code, 0) << id;
  }
  CommandResult look = Ctl({"lookup", "--namespace", "qwen", "conv-1/0",
                            "conv-1/1", "conv-1/2", "conv-1/3"});
  ASSERT_EQ(look.exit_code, 0) << look;
  EXPECT_THAT(look.out, AllOf(HasSubstr("conv-1/2"), HasSubstr("4.00 KiB"),
                              HasSubstr("prefix hits: 2 of 4")));
  CommandResult json =
      Ctl({"lookup", "--namespace", "qwen", "conv-1/0", "--json"});
  ASSERT_EQ(json.exit_code, 0) << json;
  EXPECT_THAT(json.out, HasSubstr("\"prefix_hits\": 1"));

  CommandResult usage = Ctl({"rm", "--namespace", "qwen"});
  EXPECT_EQ(usage.exit_code, 2) << usage;
  CommandResult prefix =
      Ctl({"rm", "--namespace", "qwen", "--prefix", "conv-1/"});
  ASSERT_EQ(prefix.exit_code, 0) << prefix;
  EXPECT_THAT(prefix.out, HasSubstr("removed 3 blocks"));
  EXPECT_THAT(Ctl({"lookup", "--namespace", "qwen", "conv-1/0"}).out,
              HasSubstr("prefix hits: 0 of 1"));
  CommandResult ids =
      Ctl({"rm", "--namespace", "qwen", "conv-2/0", "conv-9/0"});
  EXPECT_EQ(ids.exit_code, 1) << ids;
  EXPECT_THAT(ids.out, HasSubstr("removed 1 block"));
  EXPECT_THAT(ids.err, AllOf(HasSubstr("NOT_FOUND"), HasSubstr("conv-9/0")));
}

TEST_F(TpctlTest, StdinStdoutNamespacesRangesAndReplace) {
  const std::string data = PatternBytes(10000, 2);
  CommandResult put =
      Ctl({"put", "img", "-", "--namespace", "tenant-a", "--json"}, data);
  ASSERT_EQ(put.exit_code, 0) << put;
  EXPECT_THAT(put.out, HasSubstr("\"bytes_written\": \"10000\""));

  CommandResult get = Ctl({"get", "img", "-", "--namespace", "tenant-a",
                           "--offset", "100", "--length", "50"});
  ASSERT_EQ(get.exit_code, 0) << get;
  EXPECT_TRUE(get.out == data.substr(100, 50)) << "range differs";

  EXPECT_EQ(Ctl({"info", "img"}).exit_code, 1) << "other namespace";
  CommandResult all = Ctl({"list", "--all_namespaces"});
  EXPECT_THAT(all.out, AllOf(HasSubstr("NAMESPACE"), HasSubstr("tenant-a")));

  const std::string smaller = PatternBytes(512, 3);
  CommandResult replaced =
      Ctl({"put", "img", "-", "--namespace", "tenant-a", "--replace"}, smaller);
  ASSERT_EQ(replaced.exit_code, 0) << replaced;
  CommandResult whole = Ctl({"get", "img", "-", "--namespace", "tenant-a"});
  EXPECT_TRUE(whole.out == smaller);

  CommandResult empty = Ctl({"put", "nothing", "-"}, "");
  EXPECT_EQ(empty.exit_code, 1) << empty;
  EXPECT_THAT(empty.err, HasSubstr("is empty"));
  CommandResult no_file = Ctl({"put", "x", files_.Sub("absent.bin")});
  EXPECT_EQ(no_file.exit_code, 1) << no_file;
  EXPECT_THAT(no_file.err, HasSubstr("absent.bin"));
}

// /dev/null is still the null device. Should a regression have replaced it
// (only root can), it is put back, so that one failure does not break
// every later command on the machine.
void ExpectDevNullIntact() {
  struct stat st {};
  ASSERT_EQ(::lstat("/dev/null", &st), 0);
  const bool intact = S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3);
  EXPECT_TRUE(intact) << "/dev/null was replaced, mode " << std::oct
                      << st.st_mode;
  if (!intact && ::geteuid() == 0) {
    ::unlink("/dev/null");
    ::mknod("/dev/null", S_IFCHR | 0666, makedev(1, 3));
    ::chmod("/dev/null", 0666);
  }
}

TEST_F(TpctlTest, GetWritesDevicesAndFifosInPlace) {
  const std::string data = PatternBytes(1 << 20, 4);
  ASSERT_EQ(Ctl({"put", "blk", "-"}, data).exit_code, 0);

  // As root, the old rename put a 1 MiB regular file at /dev/null.
  CommandResult null = Ctl({"get", "blk", "/dev/null"});
  EXPECT_EQ(null.exit_code, 0) << null;
  ExpectDevNullIntact();

  // A FIFO gets the bytes (more than a pipe holds) and stays a FIFO.
  const std::string fifo = files_.Sub("pipe");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  FifoReader reader(fifo);
  CommandResult piped = Ctl({"get", "blk", fifo});
  EXPECT_EQ(piped.exit_code, 0) << piped;
  const std::string got = reader.Finish();
  EXPECT_TRUE(reader.complete());
  EXPECT_TRUE(got == data) << "got " << got.size() << " bytes";
  struct stat st {};
  ASSERT_EQ(::lstat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));

  // A regular file is still replaced whole, with no temporary left over.
  const std::string file = files_.Sub("file");
  std::ofstream(file) << "old contents, longer than nothing";
  ASSERT_EQ(Ctl({"get", "blk", file, "--length", "10"}).exit_code, 0);
  EXPECT_TRUE(ReadAll(file) == data.substr(0, 10));
  for (const auto& entry : std::filesystem::directory_iterator(files_.path())) {
    EXPECT_THAT(entry.path().filename().string(),
                ::testing::AnyOf("pipe", "file"));
  }

  CommandResult dir = Ctl({"get", "blk", files_.path()});
  EXPECT_EQ(dir.exit_code, 1) << dir;
  EXPECT_THAT(dir.err, HasSubstr("is a directory"));
}

TEST_F(TpctlTest, SwapByBytesStatusHealthAndVersion) {
  for (int i = 0; i < 4; ++i) Put(absl::StrCat("b", i), 1 << 20, i);
  CommandResult out = Ctl({"swap-out", "--bytes", "2MiB", "--json"});
  ASSERT_EQ(out.exit_code, 0) << out;
  EXPECT_THAT(out.out, HasSubstr("\"blocks_moved\": \"2\""));

  CommandResult status = Ctl({"status"});
  ASSERT_EQ(status.exit_code, 0) << status;
  EXPECT_THAT(
      status.out,
      AllOf(HasSubstr("policy lru"), HasSubstr("TIER"), HasSubstr("ram "),
            HasSubstr("disk "), HasSubstr("4 registered"),
            HasSubstr("EFFICIENCY"), HasSubstr("swap out")));
  CommandResult json = Ctl({"status", "--json"});
  ASSERT_EQ(json.exit_code, 0) << json;
  EXPECT_THAT(json.out, AllOf(HasSubstr("\"blocks_registered\": \"4\""),
                              HasSubstr("\"algorithm\": \"LRU\"")));

  CommandResult health = Ctl({"--timeout", "5s", "health"});
  EXPECT_EQ(health.exit_code, 0) << health;
  EXPECT_EQ(health.out, "SERVING\n");
  CommandResult unknown = Ctl({"health", "--service", "no.such.Service"});
  EXPECT_EQ(unknown.exit_code, 1) << unknown;
  EXPECT_THAT(unknown.err, HasSubstr("NOT_FOUND"));

  CommandResult version = Ctl({"version"});
  EXPECT_EQ(version.exit_code, 0) << version;
  EXPECT_THAT(version.out, HasSubstr("tensorpagerd "));
}

TEST_F(TpctlTest, WatchPrintsCurrentPressure) {
  CommandResult watch = Ctl({"watch", "--count", "1"});
  ASSERT_EQ(watch.exit_code, 0) << watch;
  EXPECT_THAT(watch.out, AllOf(HasSubstr("host_ram"), HasSubstr("(current)")));
  CommandResult json = Ctl({"watch", "--count", "1", "--json"});
  ASSERT_EQ(json.exit_code, 0) << json;
  EXPECT_THAT(json.out, HasSubstr("\"resource\":\"host_ram\""));
}

TEST_F(TpctlTest, PolicySwitchesTheAlgorithm) {
  CommandResult policy = Ctl({"policy", "clock"});
  ASSERT_EQ(policy.exit_code, 0) << policy;
  EXPECT_THAT(policy.out, HasSubstr("policy lru -> clock"));
  EXPECT_THAT(Ctl({"status"}).out, HasSubstr("policy clock"));
}

}  // namespace
}  // namespace tensorpager::testing
