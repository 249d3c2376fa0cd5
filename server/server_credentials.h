// The gRPC port's credentials: plaintext, or TLS whose certificate and
// key (and client CA, for mutual TLS) gRPC re-reads from their files
// while the server runs, so a renewed certificate needs no restart.
#ifndef TENSORPAGER_SERVER_SERVER_CREDENTIALS_H_
#define TENSORPAGER_SERVER_SERVER_CREDENTIALS_H_

#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/config/server_config.h"

namespace tensorpager::server {

// FAILED_PRECONDITION naming the file and what is wrong with it when a
// certificate or key does not load, or the key is not the certificate's.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerConfig& config);

// How the port is secured, for the log ("TLS, clients must present a
// certificate signed by ...", "plaintext").
std::string DescribeTransportSecurity(const ServerConfig& config);

}  // namespace tensorpager::server

#endif  // TENSORPAGER_SERVER_SERVER_CREDENTIALS_H_
