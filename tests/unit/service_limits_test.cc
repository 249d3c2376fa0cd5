// The service's guards against one client taking what others need: who a
// loopback peer is (peer_identity), the staging budget of writes in flight
// (inflight_budget) and the caps on long-lived streams (call_slots).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "server/call_slots.h"
#include "server/inflight_budget.h"
#include "server/peer_identity.h"
#include "storage/shared_memory/ring_layout.h"
#include "storage/shared_memory/ring_server.h"

namespace tensorpager::server {
namespace {

// Lines as /proc/net/tcp prints them (x86: little-endian words).
constexpr char kTcp[] =
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when "
    "retrnsmt   uid  timeout inode\n"
    "   0: 0100007F:C350 00000000:0000 0A 00000000:00000000 00:00000000 "
    "00000000     0        0 1 1 0 100 0 0 10 0\n"
    "   1: 0100007F:D431 0100007F:C350 01 00000000:00000000 00:00000000 "
    "00000000  1000        0 2 1 0 20 4 30 10 -1\n"
    "   2: 0100007F:C350 0100007F:D431 01 00000000:00000000 00:00000000 "
    "00000000     0        0 3 1 0 20 4 30 10 -1\n";

TEST(PeerIdentityTest, ParsesLoopbackPeersOnly) {
  auto v4 = ParseLoopbackPeer("ipv4:127.0.0.1:54321");
  ASSERT_TRUE(v4.has_value());
  EXPECT_FALSE(v4->v6);
  EXPECT_EQ(v4->address, "127.0.0.1");
  EXPECT_EQ(v4->port, 54321);
  auto v6 = ParseLoopbackPeer("ipv6:[::1]:80");
  ASSERT_TRUE(v6.has_value());
  EXPECT_TRUE(v6->v6);
  EXPECT_EQ(v6->port, 80);
  auto encoded = ParseLoopbackPeer("ipv6:%5B::1%5D:81");
  ASSERT_TRUE(encoded.has_value());
  EXPECT_EQ(encoded->port, 81);
  EXPECT_FALSE(ParseLoopbackPeer("ipv4:10.0.0.1:5000").has_value());
  EXPECT_FALSE(ParseLoopbackPeer("ipv6:[fe80::1]:5000").has_value());
  EXPECT_FALSE(ParseLoopbackPeer("unix:/tmp/sock").has_value());
  EXPECT_FALSE(ParseLoopbackPeer("ipv4:127.0.0.1:99999").has_value());
  EXPECT_FALSE(ParseLoopbackPeer("ipv4:127.0.0.1").has_value());
}

TEST(PeerIdentityTest, FindsTheUserOfTheEstablishedClientSocket) {
  auto client = ParseLoopbackPeer("ipv4:127.0.0.1:54321");  // 0xD431
  ASSERT_TRUE(client.has_value());
  EXPECT_EQ(UidOfSocket(kTcp, *client), std::optional<uid_t>(1000));
  // The listening socket (state 0A) is nobody's connection.
  auto listener = ParseLoopbackPeer("ipv4:127.0.0.1:50000");  // 0xC350
  ASSERT_TRUE(listener.has_value());
  EXPECT_EQ(UidOfSocket(kTcp, *listener), std::optional<uid_t>(0))
      << "the server's own accepted socket";
  auto unknown = ParseLoopbackPeer("ipv4:127.0.0.1:1234");
  ASSERT_TRUE(unknown.has_value());
  EXPECT_FALSE(UidOfSocket(kTcp, *unknown).has_value());
}

TEST(PeerIdentityTest, TwoUsersOnOneAddressIsNobody) {
  const std::string table = std::string(kTcp) +
                            "   3: 0100007F:D431 0100007F:1F90 01 "
                            "00000000:00000000 00:00000000 00000000  1001 "
                            "       0 4 1 0 20 4 30 10 -1\n";
  auto client = ParseLoopbackPeer("ipv4:127.0.0.1:54321");
  EXPECT_FALSE(UidOfSocket(table, *client).has_value());
}

TEST(PeerIdentityTest, NamesThisProcessAsItsOwnUser) {
  // A real connection over loopback: the kernel's table names our uid as
  // the owner of the client's end.
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(::listen(listener, 1), 0);
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len),
            0);
  const int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_EQ(::connect(client, reinterpret_cast<sockaddr*>(&addr), len), 0);
  sockaddr_in local{};
  ASSERT_EQ(::getsockname(client, reinterpret_cast<sockaddr*>(&local), &len),
            0);
  PeerIdentity peers;
  EXPECT_EQ(peers.UidOf(absl::StrCat("ipv4:127.0.0.1:", ntohs(local.sin_port))),
            std::optional<uid_t>(::geteuid()));
  EXPECT_FALSE(peers.UidOf("unix:/tmp/x").has_value());
  ::close(client);
  ::close(listener);
}

TEST(InflightBudgetTest, HoldsAreCappedAndGivenBack) {
  InflightBudget budget(100);
  auto a = budget.Take(60, "write a");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(budget.used(), 60u);
  auto b = budget.Take(50, "write b");
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(b.status().message().find("write b"), std::string::npos);
  EXPECT_NE(b.status().message().find("--max_inflight_bytes"),
            std::string::npos);
  EXPECT_EQ(budget.used(), 60u) << "a refused hold takes nothing";
  {
    InflightBudget::Hold moved = *std::move(a);
    EXPECT_EQ(budget.used(), 60u);
  }
  EXPECT_EQ(budget.used(), 0u);
  EXPECT_TRUE(budget.Take(100, "all").ok());
  EXPECT_FALSE(budget.Take(101, "too much").ok());
}

TEST(CallSlotsTest, CapsPerCallerAndInAll) {
  CallSlots slots("test streams", 3, 2);
  auto a1 = slots.Enter("uid 1");
  auto a2 = slots.Enter("uid 1");
  ASSERT_TRUE(a1.ok() && a2.ok());
  auto a3 = slots.Enter("uid 1");
  ASSERT_FALSE(a3.ok());
  EXPECT_NE(a3.status().message().find("uid 1 has 2 test streams"),
            std::string::npos)
      << a3.status();
  auto b1 = slots.Enter("uid 2");
  ASSERT_TRUE(b1.ok());
  auto b2 = slots.Enter("uid 2");
  ASSERT_FALSE(b2.ok()) << "3 in all";
  EXPECT_NE(b2.status().message().find("the most the server allows"),
            std::string::npos);
  EXPECT_EQ(slots.open(), 3u);
  { CallSlots::Slot gone = *std::move(a1); }
  EXPECT_EQ(slots.open(), 2u);
  EXPECT_TRUE(slots.Enter("uid 2").ok());
}

// A process out of threads (here: a pids cgroup with room for one more)
// must refuse the ring, not abort: before, the exception of the second
// thread's creation unwound past the first and std::terminate ran.
TEST(RingServerTest, NoThreadsToSpareIsAnErrorNotAnAbort) {
  const std::string group =
      absl::StrCat("/sys/fs/cgroup/pids/tp-ring-test-", ::getpid());
  std::error_code ec;
  if (!std::filesystem::create_directory(group, ec)) {
    GTEST_SKIP() << "no pids cgroup to limit threads in (" << group
                 << "): " << ec.message();
  }
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Alone in the group, then room for exactly one more thread.
    std::ofstream(group + "/cgroup.procs") << ::getpid() << std::flush;
    std::ofstream(group + "/pids.max") << 2 << std::flush;
    constexpr uint64_t size = shared_memory::kDataOffset + 4096;
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) ::_exit(3);
    shared_memory::FormatRing(static_cast<std::byte*>(p));
    // A constant: clang rejects capturing it (-Wunused-lambda-capture).
    std::shared_ptr<void> mapping(p, [](void* q) { ::munmap(q, size); });
    auto ring = shared_memory::RingServer::Start(
        mapping, size,
        [](const shared_memory::RingRequest&, absl::Span<std::byte>,
           absl::Span<std::byte>) { return shared_memory::RingCompletion{}; });
    ::_exit(!ring.ok() &&
                    ring.status().code() == absl::StatusCode::kResourceExhausted
                ? 0
                : 4);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  std::filesystem::remove(group, ec);
  ASSERT_TRUE(WIFEXITED(status))
      << "the ring aborted the process (signal "
      << (WIFSIGNALED(status) ? WTERMSIG(status) : 0) << ")";
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace tensorpager::server
