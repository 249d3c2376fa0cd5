// The SDK's channels to the server as ClientOptions asks: plaintext or
// TLS (verifying the server, and showing a client certificate for mutual
// TLS), and a bearer token added to every call's metadata.
#ifndef TENSORPAGER_CLIENT_SDK_SRC_CHANNEL_SECURITY_H_
#define TENSORPAGER_CLIENT_SDK_SRC_CHANNEL_SECURITY_H_

#include <grpcpp/channel.h>
#include <grpcpp/support/channel_arguments.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "tensorpager/client_options.h"

namespace tensorpager::internal {

// INVALID_ARGUMENT for half a client certificate, or a token that cannot
// travel in metadata; NOT_FOUND for a file that cannot be read.
absl::Status ValidateSecurityOptions(const ClientOptions& options);

// A channel to `target` with `args`, secured as `options` say.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(
    const std::string& target, const ClientOptions& options,
    grpc::ChannelArguments args);

}  // namespace tensorpager::internal

#endif  // TENSORPAGER_CLIENT_SDK_SRC_CHANNEL_SECURITY_H_
