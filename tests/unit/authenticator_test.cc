// Credentials to tenants: token first, then certificate SAN, then local
// uid; precise UNAUTHENTICATED errors; reloads that keep a good table.
#include "server/auth/authenticator.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"

namespace tensorpager::server::auth {
namespace {

class AuthenticatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat(
               "tp-auth-", getpid(), "-",
               ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "tenants.yaml").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void WriteTenants(const std::string& yaml) {
    const std::string tmp = path_ + ".tmp";
    std::ofstream(tmp) << yaml;
    std::filesystem::rename(tmp, path_);  // as a Secret update swaps it
  }

  static std::string TwoTenants(absl::string_view token_a) {
    return absl::StrCat(
        "tenants:\n"
        "  - {name: a, namespaces: [a], tokens: [",
        TokenHash(token_a),
        "], uids: [1000]}\n"
        "  - {name: b, role: admin, namespaces: ['*'], tls_sans: [b.example]}"
        "\n");
  }

  std::filesystem::path dir_;
  std::string path_;
};

Credentials Token(const std::string& token) {
  Credentials c;
  c.authorization = "Bearer " + token;
  return c;
}

TEST_F(AuthenticatorTest, OffLetsEveryCallerDoEverything) {
  Authenticator off;
  absl::StatusOr<Caller> caller = off.Authenticate(Credentials{});
  ASSERT_TRUE(caller.ok());
  EXPECT_TRUE(caller->admin());
  EXPECT_TRUE(caller->MayUse("any"));
  EXPECT_EQ(caller->tenant_name(), "");
}

TEST_F(AuthenticatorTest, TokenThenSanThenUid) {
  WriteTenants(TwoTenants("tok-a"));
  auto auth = Authenticator::Open(path_, nullptr);
  ASSERT_TRUE(auth.ok()) << auth.status();

  absl::StatusOr<Caller> a = (*auth)->Authenticate(Token("tok-a"));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->tenant_name(), "a");
  EXPECT_EQ(a->credential(), "token");
  EXPECT_FALSE(a->admin());
  EXPECT_TRUE(a->MayUse("a"));
  EXPECT_FALSE(a->MayUse("b"));

  Credentials cert;
  cert.sans = {"unknown.example", "b.example"};
  absl::StatusOr<Caller> b = (*auth)->Authenticate(cert);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->tenant_name(), "b");
  EXPECT_TRUE(b->admin());

  Credentials local;
  local.uid = 1000;
  absl::StatusOr<Caller> by_uid = (*auth)->Authenticate(local);
  ASSERT_TRUE(by_uid.ok()) << by_uid.status();
  EXPECT_EQ(by_uid->tenant_name(), "a");
  EXPECT_EQ(by_uid->credential(), "uid 1000");

  // A token decides alone: a wrong one is not rescued by the uid.
  Credentials wrong = Token("tok-x");
  wrong.uid = 1000;
  absl::StatusOr<Caller> denied = (*auth)->Authenticate(wrong);
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(denied.status().message().find("not in the server's tenants"),
            std::string::npos);
}

TEST_F(AuthenticatorTest, MissingOrMalformedCredentialsSayWhatToSend) {
  WriteTenants(TwoTenants("tok-a"));
  auto auth = Authenticator::Open(path_, nullptr);
  ASSERT_TRUE(auth.ok()) << auth.status();
  absl::StatusOr<Caller> none = (*auth)->Authenticate(Credentials{});
  EXPECT_EQ(none.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(none.status().message().find("Bearer"), std::string::npos);

  Credentials basic;
  basic.authorization = "Basic dXNlcg==";
  EXPECT_NE((*auth)->Authenticate(basic).status().message().find(
                "not 'Bearer <token>'"),
            std::string::npos);

  Credentials stranger;
  stranger.uid = 4242;
  stranger.sans = {"x.example"};
  absl::StatusOr<Caller> s = (*auth)->Authenticate(stranger);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(s.status().message().find("uid 4242"), std::string::npos);
  EXPECT_NE(s.status().message().find("x.example"), std::string::npos);
}

TEST_F(AuthenticatorTest, ChangedFileIsReloadedAndABadOneIgnored) {
  WriteTenants(TwoTenants("old"));
  auto auth = Authenticator::Open(path_, nullptr);
  ASSERT_TRUE(auth.ok()) << auth.status();
  ASSERT_TRUE((*auth)->Authenticate(Token("old")).ok());
  // A caller keeps its tenant across reloads.
  absl::StatusOr<Caller> held = (*auth)->Authenticate(Token("old"));

  WriteTenants(TwoTenants("new"));  // the watcher sees it within seconds
  bool reloaded = false;
  for (int i = 0; i < 100 && !reloaded; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    reloaded = (*auth)->Authenticate(Token("new")).ok();
  }
  ASSERT_TRUE(reloaded);
  EXPECT_EQ((*auth)->Authenticate(Token("old")).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(held->tenant_name(), "a");

  WriteTenants("tenants: [");  // broken: the table in use stays
  EXPECT_FALSE((*auth)->Reload().ok());
  EXPECT_TRUE((*auth)->Authenticate(Token("new")).ok());
}

TEST_F(AuthenticatorTest, OpenFailsOnABadFile) {
  WriteTenants("tenants: [{name: a}]");
  auto auth = Authenticator::Open(path_, nullptr);
  EXPECT_EQ(auth.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tensorpager::server::auth
