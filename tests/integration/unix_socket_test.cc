// The Unix domain socket listener (--unix_socket): its file mode, the
// kernel's word on the peer's user naming a tenant (and opening shared
// memory), the files it refuses to replace, and its cap on one user's
// connections.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/auth/tenant_table.h"
#include "tests/integration/pager_fixture.h"
#include "tests/integration/run_command.h"
#include "tests/testing/temp_dir.h"

namespace tensorpager::testing {
namespace {

class UnixSocketTest : public PagerTest {
 protected:
  void SetUp() override {
    socket_ = dir_.Sub("tp.sock");
    tenants_ = dir_.Sub("tenants.yaml");
    std::ofstream(tenants_)
        << "tenants:\n"
           "  - {name: local, namespaces: [local], uids: ["
        << getuid() << "]}\n"
        << "  - {name: remote, namespaces: [remote], tokens: [\""
        << server::auth::TokenHash("tok-r") << "\"]}\n";
  }
  TempDir dir_;
  std::string socket_;
  std::string tenants_;
};

TEST_F(UnixSocketTest, PeerUserNamesTheTenantAndOpensSharedMemory) {
  ServerProcess::Options o;
  o.flags = {"--tenants_file=" + tenants_, "--unix_socket=" + socket_,
             "--unix_socket_mode=0600"};
  auto server = ServerProcess::Start(o);
  ASSERT_TRUE(server.ok()) << server.status();
  struct stat st;
  ASSERT_EQ(lstat(socket_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  ClientOptions options;
  options.shared_memory_bytes = 8 << 20;
  options.log_sink = [](absl::string_view) {};
  auto client = Client::Connect("unix:" + socket_, options);
  ASSERT_TRUE(client.ok()) << client.status();
  Client& c = **client;
  absl::StatusOr<v1::StatusResponse> status = c.Status();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->tenant(), "local");
  const std::string bytes = PatternBytes(100000, 3);
  PutItem item;
  item.id = "x";
  item.data = absl::MakeSpan(reinterpret_cast<const std::byte*>(bytes.data()),
                             bytes.size());
  auto put = c.PutBatch("local", {item});
  ASSERT_TRUE(put.ok()) << put.status();
  ASSERT_TRUE((*put)[0].status.ok()) << (*put)[0].status;
  // The server knew the user, so it attached the client's arena.
  const BatchPath path = c.batch_path();
  EXPECT_TRUE(path.shared_memory) << path.reason;
  absl::StatusOr<ReadResult> read = c.Read(BlockName("local", "x"));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_TRUE(read->data == bytes);
  EXPECT_EQ(c.Get(BlockName("remote", "x")).status().code(),
            absl::StatusCode::kPermissionDenied);

  ASSERT_TRUE((*server)->Stop().ok());
  EXPECT_NE(lstat(socket_.c_str(), &st), 0) << "socket file left behind";
}

TEST_F(UnixSocketTest, OtherFilesAtThePathAreNotReplaced) {
  const std::string file = dir_.Sub("not-a-socket");
  std::ofstream(file) << "keep me";
  CommandResult r =
      RunCommand({ServerProcess::BinaryPath(), "--data_dir=" + dir_.Sub("data"),
                  "--grpc_address=127.0.0.1:0",
                  "--metrics_address=", "--unix_socket=" + file});
  EXPECT_NE(r.exit_code, 0) << r;
  EXPECT_NE(r.err.find("is not a socket"), std::string::npos) << r;
  std::ifstream in(file);
  std::string kept;
  std::getline(in, kept);
  EXPECT_EQ(kept, "keep me");
  CommandResult bad_mode = RunCommand(
      {ServerProcess::BinaryPath(), "--data_dir=" + dir_.Sub("data2"),
       "--grpc_address=127.0.0.1:0", "--metrics_address=",
       "--unix_socket=" + dir_.Sub("s"), "--unix_socket_mode=0999"});
  EXPECT_NE(bad_mode.exit_code, 0) << bad_mode;
  EXPECT_NE(bad_mode.err.find("not octal"), std::string::npos) << bad_mode;
}

// One local user opening connections without end (here: raw ones that
// never speak gRPC) is held at --unix_socket_max_connections_per_uid:
// past it its connections are closed at once and the log says why, while
// clients on the TCP port go on; once it closes some, it connects again.
TEST_F(UnixSocketTest, ConnectionsPerUserAreCapped) {
  ServerProcess::Options o;
  o.flags = {"--unix_socket=" + socket_,
             "--unix_socket_max_connections_per_uid=4"};
  auto server = ServerProcess::Start(o);
  ASSERT_TRUE(server.ok()) << server.status();
  auto raw_connection = [&]() {
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, socket_.data(), socket_.size());
    EXPECT_EQ(
        connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)), 0);
    return fd;
  };
  // Whether the server closed `fd` (EOF) within a second.
  auto closed_by_server = [](int fd) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 1000) != 1) return false;
    char byte;
    return recv(fd, &byte, 1, MSG_DONTWAIT) == 0;
  };
  std::vector<int> held;
  for (int i = 0; i < 4; ++i) held.push_back(raw_connection());
  const int fifth = raw_connection();
  EXPECT_TRUE(closed_by_server(fifth));
  close(fifth);
  for (int fd : held) EXPECT_FALSE(closed_by_server(fd));
  EXPECT_NE((*server)->Log().find("already holds 4 connections"),
            std::string::npos)
      << (*server)->Log();

  ClientOptions options;
  options.shared_memory_bytes = 0;
  options.log_sink = [](absl::string_view) {};
  auto tcp = Client::Connect((*server)->target(), options);
  ASSERT_TRUE(tcp.ok()) << tcp.status();
  EXPECT_TRUE((*tcp)->Status().ok());
  auto local = Client::Connect("unix:" + socket_, options);
  ASSERT_TRUE(local.ok()) << local.status();
  EXPECT_EQ((*local)->Status().status().code(), absl::StatusCode::kUnavailable);

  for (int fd : held) close(fd);
  // gRPC closes its ends in its own time; the next connection counts
  // only those still open.
  absl::Status status = absl::UnknownError("not tried");
  for (int i = 0; i < 100 && !status.ok(); ++i) {
    auto again = Client::Connect("unix:" + socket_, options);
    ASSERT_TRUE(again.ok()) << again.status();
    status = (*again)->Status().status();
    if (!status.ok())
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(status.ok()) << status;
}

}  // namespace
}  // namespace tensorpager::testing
