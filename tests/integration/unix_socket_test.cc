// The Unix domain socket listener (--unix_socket): its file mode, the
// kernel's word on the peer's user naming a tenant (and opening shared
// memory), and the files it refuses to replace.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

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

}  // namespace
}  // namespace tensorpager::testing
