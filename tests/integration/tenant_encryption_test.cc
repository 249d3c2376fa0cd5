// Encryption at rest for some tenants only (--encryption_scope=tenants):
// the blocks of a tenant marked `encrypt: true` reach the drive sealed,
// the others' as they are, and both read back whole, also after a
// restart.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "server/auth/tenant_table.h"
#include "tests/integration/pager_fixture.h"
#include "tests/testing/find_in_file.h"
#include "tests/testing/temp_dir.h"

namespace tensorpager::testing {
namespace {

using ::tensorpager::server::auth::TokenHash;

constexpr uint64_t kBlock = 256 << 10;

class TenantEncryptionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(dir_.Sub("keys")) << "k1 00112233445566778899aabbccddeeff"
                                       "00112233445566778899aabbccddeeff\n";
    std::ofstream(dir_.Sub("tenants.yaml")) << absl::StrCat(
        "tenants:\n"
        "  - {name: secret, namespaces: [secret], encrypt: true, tokens: [\"",
        TokenHash("tok-s"),
        "\"]}\n"
        "  - {name: open, namespaces: [open], tokens: [\"",
        TokenHash("tok-o"), "\"]}\n");
    options_.flags = {"--tenants_file=" + dir_.Sub("tenants.yaml"),
                      "--encryption_key_file=" + dir_.Sub("keys"),
                      "--encryption_scope=tenants", "--ram_budget=64MiB"};
    options_.data_dir = dir_.Sub("data");
    Start();
  }

  void Start() {
    auto server = ServerProcess::Start(options_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  std::unique_ptr<Client> Connect(const std::string& token) {
    return ConnectWithToken(*server_, token);
  }

  TempDir dir_;
  ServerProcess::Options options_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(TenantEncryptionTest, OnlyTheMarkedTenantsBlocksAreSealed) {
  const std::string data_file = dir_.Sub("data") + "/blocks.dat";
  const std::string secret_bytes = PatternBytes(kBlock, 1);
  const std::string open_bytes = PatternBytes(kBlock, 2);
  {
    std::unique_ptr<Client> s = Connect("tok-s");
    std::unique_ptr<Client> o = Connect("tok-o");
    ASSERT_NE(s, nullptr);
    ASSERT_NE(o, nullptr);
    ASSERT_TRUE(s->Register(BlockSpec(BlockName("secret", "x"), kBlock)).ok());
    ASSERT_TRUE(s->Write(BlockName("secret", "x"), secret_bytes).ok());
    ASSERT_TRUE(o->Register(BlockSpec(BlockName("open", "x"), kBlock)).ok());
    ASSERT_TRUE(o->Write(BlockName("open", "x"), open_bytes).ok());
    ASSERT_TRUE(s->SwapOut({BlockName("secret", "x")}).ok());
    ASSERT_TRUE(o->SwapOut({BlockName("open", "x")}).ok());
  }
  EXPECT_LT(FindInFile(data_file, secret_bytes.substr(0, 4096)), 0)
      << "the encrypted tenant's block is in the data file in the clear";
  EXPECT_GE(FindInFile(data_file, open_bytes.substr(0, 4096)), 0)
      << "the other tenant's block was sealed too";
  EXPECT_NE(server_->Log().find("for the tenants marked"), std::string::npos);

  ASSERT_TRUE(server_->Stop().ok());
  Start();
  std::unique_ptr<Client> s = Connect("tok-s");
  std::unique_ptr<Client> o = Connect("tok-o");
  auto secret = s->Read(BlockName("secret", "x"));
  ASSERT_TRUE(secret.ok()) << secret.status();
  EXPECT_TRUE(secret->data == secret_bytes);
  auto open = o->Read(BlockName("open", "x"));
  ASSERT_TRUE(open.ok()) << open.status();
  EXPECT_TRUE(open->data == open_bytes);
}

}  // namespace
}  // namespace tensorpager::testing
