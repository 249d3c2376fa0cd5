// TLS on the gRPC port, with certificates this test makes with the openssl
// command: server-only TLS with a token, mutual TLS whose certificate SAN
// names the tenant, a renewed certificate picked up without a restart,
// /metrics over HTTPS, and a non-loopback address that refuses to start
// without authentication.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "server/auth/tenant_table.h"
#include "tests/integration/pager_fixture.h"
#include "tests/integration/run_command.h"
#include "tests/testing/http_get.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_pki.h"

namespace tensorpager::testing {
namespace {

class TlsTest : public PagerTest {
 protected:
  void SetUp() override {
    if (!TestPki::Available()) {
      GTEST_SKIP() << "the openssl command is missing (apt-get install "
                      "openssl); it makes this test's certificates";
    }
    ASSERT_TRUE(pki_.MakeCa("ca"));
    ASSERT_TRUE(pki_.MakeCa("other-ca"));
    ASSERT_TRUE(pki_.MakeCert("server", "ca", "DNS:localhost,IP:127.0.0.1"));
    ASSERT_TRUE(pki_.MakeCert("engine", "ca", "DNS:engine-a.example"));
    ASSERT_TRUE(pki_.MakeCert("stranger", "other-ca", "DNS:engine-a.example"));
    tenants_ = dir_.Sub("tenants.yaml");
    std::ofstream(tenants_) << "tenants:\n"
                               "  - name: a\n"
                               "    namespaces: [a]\n"
                               "    tokens: [\""
                            << server::auth::TokenHash("tok-a")
                            << "\"]\n"
                               "    tls_sans: [engine-a.example]\n";
    // Copies the server reads, so the test can renew them.
    std::filesystem::copy_file(pki_.Path("server.crt"), dir_.Sub("live.crt"));
    std::filesystem::copy_file(pki_.Path("server.key"), dir_.Sub("live.key"));
  }

  void StartTls(bool mutual, std::vector<std::string> more_flags = {}) {
    std::vector<std::string> flags = {"--tenants_file=" + tenants_,
                                      "--tls_cert_file=" + dir_.Sub("live.crt"),
                                      "--tls_key_file=" + dir_.Sub("live.key")};
    if (mutual) flags.push_back("--tls_client_ca_file=" + pki_.Path("ca.crt"));
    flags.insert(flags.end(), more_flags.begin(), more_flags.end());
    ServerProcess::Options o;
    o.flags = flags;
    auto server = ServerProcess::Start(o);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  // A client with `options`; its first call's status.
  absl::Status FirstCall(ClientOptions options) {
    options.shared_memory_bytes = 0;
    options.timeout = absl::Seconds(5);
    options.max_retries = 0;
    auto c = Client::Connect(server_->target(), options);
    if (!c.ok()) return c.status();
    return (*c)->Status().status();
  }

  ClientOptions Tls(const std::string& ca) {
    ClientOptions o;
    o.tls_ca_file = pki_.Path(ca + ".crt");
    return o;
  }

  // Replaces the server's certificate with one `ca` signed, key first,
  // then certificate, each by rename, as cert-manager does.
  void Renew(const std::string& ca) {
    ASSERT_TRUE(pki_.MakeCert("renewed", ca, "DNS:localhost,IP:127.0.0.1"));
    std::filesystem::copy_file(pki_.Path("renewed.key"), dir_.Sub("next.key"));
    std::filesystem::copy_file(pki_.Path("renewed.crt"), dir_.Sub("next.crt"));
    std::filesystem::rename(dir_.Sub("next.key"), dir_.Sub("live.key"));
    std::filesystem::rename(dir_.Sub("next.crt"), dir_.Sub("live.crt"));
  }

  TempDir dir_;
  TestPki pki_{dir_.path()};
  std::string tenants_;
};

TEST_F(TlsTest, TlsWithATokenAndNothingElse) {
  StartTls(/*mutual=*/false);
  ClientOptions ok = Tls("ca");
  ok.token = "tok-a";
  EXPECT_TRUE(FirstCall(ok).ok()) << FirstCall(ok);
  // Over TLS but without a credential: the server answers, and refuses.
  EXPECT_EQ(FirstCall(Tls("ca")).code(), absl::StatusCode::kUnauthenticated);
  // Plaintext to a TLS port, or a server the client's CA did not sign:
  // no connection at all.
  ClientOptions plain;
  plain.token = "tok-a";
  EXPECT_EQ(FirstCall(plain).code(), absl::StatusCode::kUnavailable);
  ClientOptions wrong_ca = Tls("other-ca");
  wrong_ca.token = "tok-a";
  EXPECT_EQ(FirstCall(wrong_ca).code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(server_->Log().find("TLS ("), std::string::npos) << server_->Log();
}

TEST_F(TlsTest, MutualTlsNamesTheTenantByTheCertificateSan) {
  StartTls(/*mutual=*/true);
  ClientOptions engine = Tls("ca");
  engine.tls_cert_file = pki_.Path("engine.crt");
  engine.tls_key_file = pki_.Path("engine.key");
  ClientOptions o = engine;
  o.shared_memory_bytes = 0;
  auto c = Client::Connect(server_->target(), o);
  ASSERT_TRUE(c.ok()) << c.status();
  absl::StatusOr<v1::StatusResponse> status = (*c)->Status();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->tenant(), "a");
  EXPECT_EQ((*c)->Get(BlockName("b", "x")).status().code(),
            absl::StatusCode::kPermissionDenied);
  // No client certificate, or one another CA signed: the handshake fails.
  EXPECT_EQ(FirstCall(Tls("ca")).code(), absl::StatusCode::kUnavailable);
  ClientOptions stranger = Tls("ca");
  stranger.tls_cert_file = pki_.Path("stranger.crt");
  stranger.tls_key_file = pki_.Path("stranger.key");
  EXPECT_EQ(FirstCall(stranger).code(), absl::StatusCode::kUnavailable);
}

TEST_F(TlsTest, RenewedCertificateIsServedWithoutARestart) {
  StartTls(/*mutual=*/false);
  ClientOptions old_ca = Tls("ca");
  old_ca.token = "tok-a";
  ASSERT_TRUE(FirstCall(old_ca).ok());
  Renew("other-ca");
  ClientOptions new_ca = Tls("other-ca");
  new_ca.token = "tok-a";
  bool renewed = false;
  for (int i = 0; i < 100 && !renewed; ++i) {
    renewed = FirstCall(new_ca).ok();
    if (!renewed) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(renewed) << server_->Log();
  EXPECT_EQ(FirstCall(old_ca).code(), absl::StatusCode::kUnavailable);
}

// /metrics over HTTPS (--metrics_tls) with the gRPC port's certificate
// and client CA: a scraper needs a certificate that CA signed, plaintext
// gets nothing, and a renewed certificate is served without a restart.
TEST_F(TlsTest, MetricsOverTlsNeedAClientCertificate) {
  StartTls(/*mutual=*/true, {"--metrics_tls"});
  const int port = server_->metrics_port();
  ASSERT_GT(port, 0);
  const TlsClientFiles scraper{pki_.Path("ca.crt"), pki_.Path("engine.crt"),
                               pki_.Path("engine.key")};
  absl::StatusOr<HttpResponse> scrape = HttpsGet(port, "/metrics", scraper);
  ASSERT_TRUE(scrape.ok()) << scrape.status();
  EXPECT_EQ(scrape->status, 200);
  EXPECT_NE(scrape->body.find("tensorpager_blocks_registered"),
            std::string::npos);
  // No certificate, one another CA signed, or no TLS at all: no answer.
  EXPECT_FALSE(HttpsGet(port, "/metrics", {pki_.Path("ca.crt"), "", ""}).ok());
  EXPECT_FALSE(HttpsGet(port, "/metrics",
                        {pki_.Path("ca.crt"), pki_.Path("stranger.crt"),
                         pki_.Path("stranger.key")})
                   .ok());
  absl::StatusOr<HttpResponse> plain = HttpGet(port, "/metrics");
  EXPECT_FALSE(plain.ok() && plain->status == 200);
  EXPECT_NE(server_->Log().find("https://"), std::string::npos);

  Renew("other-ca");
  const TlsClientFiles trusts_new{pki_.Path("other-ca.crt"),
                                  pki_.Path("engine.crt"),
                                  pki_.Path("engine.key")};
  bool renewed = false;
  for (int i = 0; i < 100 && !renewed; ++i) {
    renewed = HttpsGet(port, "/metrics", trusts_new).ok();
    if (!renewed) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(renewed) << server_->Log();
  EXPECT_FALSE(HttpsGet(port, "/metrics", scraper).ok());
}

TEST_F(TlsTest, OtherHostsWithoutAuthenticationNeedAllowInsecure) {
  const std::string binary = ServerProcess::BinaryPath();
  CommandResult refused =
      RunCommand({binary, "--data_dir=" + dir_.Sub("data"),
                  "--grpc_address=0.0.0.0:0", "--metrics_address="});
  EXPECT_NE(refused.exit_code, 0) << refused;
  EXPECT_NE(refused.err.find("--allow_insecure"), std::string::npos) << refused;
  EXPECT_NE(refused.err.find("--tenants_file"), std::string::npos) << refused;

  ServerProcess::Options o;
  o.flags = {"--grpc_address=0.0.0.0:0", "--allow_insecure"};
  auto server = ServerProcess::Start(o);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_NE((*server)->Log().find("no authentication; anyone"),
            std::string::npos)
      << (*server)->Log();
  // Half a TLS configuration is refused with what is missing.
  CommandResult half = RunCommand(
      {binary, "--data_dir=" + dir_.Sub("data2"),
       "--metrics_address=", "--tls_cert_file=" + pki_.Path("server.crt")});
  EXPECT_NE(half.exit_code, 0) << half;
  EXPECT_NE(half.err.find("--tls_key_file"), std::string::npos) << half;
  CommandResult mismatched =
      RunCommand({binary, "--data_dir=" + dir_.Sub("data3"),
                  "--metrics_address=", "--grpc_address=127.0.0.1:0",
                  "--tls_cert_file=" + pki_.Path("server.crt"),
                  "--tls_key_file=" + pki_.Path("engine.key")});
  EXPECT_NE(mismatched.exit_code, 0) << mismatched;
  EXPECT_NE(mismatched.err.find("is not the key of the certificate"),
            std::string::npos)
      << mismatched;
}

}  // namespace
}  // namespace tensorpager::testing
