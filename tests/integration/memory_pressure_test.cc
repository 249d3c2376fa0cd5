// Real host-memory pressure: tensorpagerd runs in a memory cgroup with a
// limit, fills its RAM tier, then another process in the same cgroup
// allocates memory. The service must see the pressure, shrink its RAM tier
// by swapping to disk, and neither process may be OOM-killed.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/integration/pager_fixture.h"

namespace tensorpager::testing {
namespace {

constexpr uint64_t kMiB = 1024 * 1024;
constexpr uint64_t kLimit = 640 * kMiB;

bool WriteFile(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  f.flush();
  return f.good();
}

// A memory cgroup for the test, v1 or v2, removed afterwards.
class MemoryCgroup {
 public:
  // Empty path() when the machine refuses (not root, no controller).
  MemoryCgroup() {
    const std::string name = absl::StrCat("tensorpager-test-", ::getpid());
    if (std::filesystem::exists(
            "/sys/fs/cgroup/memory/memory.limit_in_bytes")) {
      const std::string dir = "/sys/fs/cgroup/memory/" + name;
      std::error_code ec;
      if (std::filesystem::create_directory(dir, ec) &&
          WriteFile(dir + "/memory.limit_in_bytes", std::to_string(kLimit))) {
        path_ = dir;
        // No swap device on these machines; make sure none is used either.
        WriteFile(dir + "/memory.swappiness", "0");
      }
    } else if (std::filesystem::exists("/sys/fs/cgroup/cgroup.controllers")) {
      const std::string dir = "/sys/fs/cgroup/" + name;
      WriteFile("/sys/fs/cgroup/cgroup.subtree_control", "+memory");
      std::error_code ec;
      if (std::filesystem::create_directory(dir, ec) &&
          WriteFile(dir + "/memory.max", std::to_string(kLimit))) {
        path_ = dir;
        WriteFile(dir + "/memory.swap.max", "0");
      }
    }
    if (path_.empty()) why_ = "cannot create a memory cgroup here (needs root)";
  }
  ~MemoryCgroup() {
    if (!path_.empty()) ::rmdir(path_.c_str());
  }
  const std::string& path() const { return path_; }
  const std::string& why() const { return why_; }
  // sh prefix that moves itself into the cgroup, then execs "$0" "$@".
  std::vector<std::string> Wrapper() const {
    return {"/bin/sh", "-c",
            absl::StrCat("echo $$ > ", path_,
                         "/cgroup.procs && exec \"$0\" \"$@\"")};
  }
  int OomKills() const {
    std::ifstream f(path_ + (std::filesystem::exists(path_ + "/memory.events")
                                 ? "/memory.events"
                                 : "/memory.oom_control"));
    std::string key;
    long value;
    while (f >> key >> value) {
      if (key == "oom_kill") return static_cast<int>(value);
    }
    return 0;
  }

 private:
  std::string path_;
  std::string why_;
};

TEST(MemoryPressureTest, ServiceSwapsItsRamTierOutWhenItsCgroupFillsUp) {
  MemoryCgroup cgroup;
  if (cgroup.path().empty()) GTEST_SKIP() << cgroup.why();
  ServerProcess::Options o;
  o.wrapper = cgroup.Wrapper();
  o.flags = {"--ram_budget=400MiB",  "--swap_threshold=0.95",
             "--swap_target=0.9",    "--pressure_interval_ms=100",
             "--max_swap_size=1GiB", "--prefetch_depth=0"};
  auto server = ServerProcess::Start(o);
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = Client::Connect((*server)->target());
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE((*client)->WaitUntilReady(absl::Seconds(30)).ok());

  // 320 MiB of blocks: half the cgroup's limit, inside the RAM budget.
  constexpr int kBlocks = 80;
  for (int i = 0; i < kBlocks; ++i) {
    BlockSpec spec{absl::StrCat("b", i), 4 * kMiB};
    ASSERT_TRUE((*client)->Register(spec).ok());
    ASSERT_TRUE((*client)->Write(spec.name, PatternBytes(4 * kMiB, i)).ok());
  }
  const uint64_t filled = (*client)->Status()->ram().bytes();
  EXPECT_EQ(filled, kBlocks * 4 * kMiB);

  // Another process in the cgroup takes 300 MiB, 10 MiB at a time: without
  // the service giving memory back the cgroup would run out.
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string join =
        absl::StrCat("/bin/sh -c 'echo $$ > ", cgroup.path(),
                     "/cgroup.procs && exec /usr/bin/python3 -c \"",
                     "import time\nchunks=[]\n", "for i in range(30):\n",
                     " chunks.append(bytes([i % 251 + 1]) * (10 << 20))\n",
                     " time.sleep(0.1)\n", "time.sleep(2)\n\"'");
    ::execl("/bin/sh", "/bin/sh", "-c", join.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "the allocating process died (status " << status << ")";
  EXPECT_EQ(cgroup.OomKills(), 0);

  auto st = (*client)->Status();
  ASSERT_TRUE(st.ok()) << "tensorpagerd died:\n" << (*server)->Log();
  EXPECT_LT(st->ram().bytes(), filled) << (*server)->Log();
  EXPECT_GT(st->efficiency().swap_outs(), 0u);
  EXPECT_NE((*server)->Log().find("host pressure"), std::string::npos)
      << (*server)->Log();
  for (int i = 0; i < kBlocks; i += 9) {
    auto r = (*client)->Read(absl::StrCat("b", i));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_TRUE(r->data == PatternBytes(4 * kMiB, i));
  }
  EXPECT_TRUE((*server)->Stop().ok());
}

}  // namespace
}  // namespace tensorpager::testing
