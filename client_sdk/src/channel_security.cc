#include "client_sdk/src/channel_security.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/client_interceptor.h>

#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace tensorpager::internal {
namespace {

namespace gx = grpc::experimental;

// Adds the token to each call's initial metadata: one place for every
// RPC the SDK makes, whatever ClientContext it built.
class TokenInterceptor final : public gx::Interceptor {
 public:
  explicit TokenInterceptor(const std::string* authorization)
      : authorization_(authorization) {}
  void Intercept(gx::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            gx::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->emplace("authorization",
                                                 *authorization_);
    }
    methods->Proceed();
  }

 private:
  const std::string* authorization_;
};

class TokenInterceptorFactory final
    : public gx::ClientInterceptorFactoryInterface {
 public:
  explicit TokenInterceptorFactory(const std::string& token)
      : authorization_(absl::StrCat("Bearer ", token)) {}
  gx::Interceptor* CreateClientInterceptor(gx::ClientRpcInfo*) override {
    // gRPC owns (and deletes) the interceptors it asks for.
    return std::make_unique<TokenInterceptor>(&authorization_).release();
  }

 private:
  const std::string authorization_;
};

absl::StatusOr<std::string> ReadFile(const std::string& path,
                                     const char* option) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat(option, " ", path, " cannot be read"));
  }
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

absl::Status ValidateSecurityOptions(const ClientOptions& o) {
  if (o.tls_cert_file.empty() != o.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "tls_cert_file and tls_key_file go together (a client certificate "
        "and its key)");
  }
  if (!o.tls_cert_file.empty() && o.tls_ca_file.empty()) {
    return absl::InvalidArgumentError(
        "a client certificate needs TLS: give tls_ca_file, the CA that "
        "signed the server's certificate");
  }
  for (char c : o.token) {
    if (c < 0x21 || c > 0x7e) {
      return absl::InvalidArgumentError(
          "the token has a space or a non-printable byte; a bearer token is "
          "printable ASCII");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(
    const std::string& target, const ClientOptions& o,
    grpc::ChannelArguments args) {
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (o.tls_ca_file.empty()) {
    credentials = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions ssl;
    absl::StatusOr<std::string> ca = ReadFile(o.tls_ca_file, "tls_ca_file");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *std::move(ca);
    if (!o.tls_cert_file.empty()) {
      absl::StatusOr<std::string> cert =
          ReadFile(o.tls_cert_file, "tls_cert_file");
      if (!cert.ok()) return cert.status();
      absl::StatusOr<std::string> key =
          ReadFile(o.tls_key_file, "tls_key_file");
      if (!key.ok()) return key.status();
      ssl.pem_cert_chain = *std::move(cert);
      ssl.pem_private_key = *std::move(key);
    }
    credentials = grpc::SslCredentials(ssl);
    if (!o.tls_server_name.empty()) {
      args.SetSslTargetNameOverride(o.tls_server_name);
    }
  }
  if (o.token.empty()) {
    return grpc::CreateCustomChannel(target, credentials, args);
  }
  std::vector<std::unique_ptr<gx::ClientInterceptorFactoryInterface>>
      interceptors;
  interceptors.push_back(std::make_unique<TokenInterceptorFactory>(o.token));
  return gx::CreateCustomChannelWithInterceptors(target, credentials, args,
                                                 std::move(interceptors));
}

}  // namespace tensorpager::internal
