#include "server/server_credentials.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdio>

#include "absl/strings/str_cat.h"

namespace tensorpager::server {
namespace {

// How often gRPC looks at the certificate files for a new version.
constexpr unsigned int kCertificateRefreshSeconds = 2;

struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

absl::Status Unusable(const std::string& flag, const std::string& path,
                      absl::string_view why) {
  return absl::FailedPreconditionError(
      absl::StrCat("--", flag, "=", path, ": ", why));
}

// Loads what the flags name now, so a wrong file stops the start with a
// message instead of failing every handshake later.
absl::Status CheckFiles(const ServerConfig& c) {
  std::unique_ptr<FILE, FileCloser> cert_file(
      std::fopen(c.tls_cert_file.c_str(), "r"));
  if (!cert_file)
    return Unusable("tls_cert_file", c.tls_cert_file, "unreadable");
  std::unique_ptr<X509, X509Free> cert(
      PEM_read_X509(cert_file.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    return Unusable("tls_cert_file", c.tls_cert_file,
                    "holds no PEM certificate");
  }
  std::unique_ptr<FILE, FileCloser> key_file(
      std::fopen(c.tls_key_file.c_str(), "r"));
  if (!key_file) return Unusable("tls_key_file", c.tls_key_file, "unreadable");
  std::unique_ptr<EVP_PKEY, KeyFree> key(
      PEM_read_PrivateKey(key_file.get(), nullptr, nullptr, nullptr));
  if (!key) {
    return Unusable("tls_key_file", c.tls_key_file,
                    "holds no PEM private key (an encrypted key is not "
                    "supported)");
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    return Unusable(
        "tls_key_file", c.tls_key_file,
        absl::StrCat("is not the key of the certificate in ", c.tls_cert_file));
  }
  if (!c.tls_client_ca_file.empty()) {
    std::unique_ptr<FILE, FileCloser> ca_file(
        std::fopen(c.tls_client_ca_file.c_str(), "r"));
    if (!ca_file) {
      return Unusable("tls_client_ca_file", c.tls_client_ca_file, "unreadable");
    }
    std::unique_ptr<X509, X509Free> ca(
        PEM_read_X509(ca_file.get(), nullptr, nullptr, nullptr));
    if (!ca) {
      return Unusable("tls_client_ca_file", c.tls_client_ca_file,
                      "holds no PEM certificate");
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerConfig& c) {
  if (c.tls_cert_file.empty()) return grpc::InsecureServerCredentials();
  if (absl::Status s = CheckFiles(c); !s.ok()) return s;
  namespace gx = grpc::experimental;
  std::shared_ptr<gx::CertificateProviderInterface> provider =
      c.tls_client_ca_file.empty()
          ? std::make_shared<gx::FileWatcherCertificateProvider>(
                c.tls_key_file, c.tls_cert_file, kCertificateRefreshSeconds)
          : std::make_shared<gx::FileWatcherCertificateProvider>(
                c.tls_key_file, c.tls_cert_file, c.tls_client_ca_file,
                kCertificateRefreshSeconds);
  gx::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (c.tls_client_ca_file.empty()) {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  } else {
    options.watch_root_certs();
    options.set_cert_request_type(
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  }
  std::shared_ptr<grpc::ServerCredentials> creds =
      gx::TlsServerCredentials(options);
  if (creds == nullptr) {
    return absl::InternalError("gRPC could not make TLS credentials");
  }
  return creds;
}

std::string DescribeTransportSecurity(const ServerConfig& c) {
  if (c.tls_cert_file.empty()) return "plaintext";
  if (c.tls_client_ca_file.empty()) {
    return absl::StrCat("TLS (", c.tls_cert_file, ")");
  }
  return absl::StrCat("mutual TLS (", c.tls_cert_file,
                      "; clients need a certificate signed by ",
                      c.tls_client_ca_file, ")");
}

}  // namespace tensorpager::server
