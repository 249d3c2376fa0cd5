// A Unix domain socket for clients on this host (--unix_socket), whose
// file mode and group come from flags. tensorpagerd accepts its
// connections itself to learn each peer's user from the kernel
// (SO_PEERCRED), notes it for PeerIdentity (tenants known by uid, shared
// memory), and hands the connection to gRPC (AddInsecureChannelFromFd).
#ifndef TENSORPAGER_SERVER_UNIX_SOCKET_LISTENER_H_
#define TENSORPAGER_SERVER_UNIX_SOCKET_LISTENER_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "server/peer_identity.h"

namespace grpc {
class Server;
}

namespace tensorpager::server {

struct UnixSocketOptions {
  std::string path;
  mode_t mode = 0660;
  std::string group;  // empty: the server's own group
  uint32_t max_connections_per_uid = 128;
};

class UnixSocketListener {
 public:
  // Creates the socket (replacing a stale socket file, never another
  // kind of file), applies mode and group, and serves connections on
  // `server` (which must outlive the listener). FAILED_PRECONDITION
  // naming the path or the group when that fails.
  static absl::StatusOr<std::unique_ptr<UnixSocketListener>> Start(
      UnixSocketOptions options, grpc::Server* server, PeerIdentity* peers);
  // Stops accepting and removes the socket file; gRPC keeps serving the
  // connections it has.
  ~UnixSocketListener();
  UnixSocketListener(const UnixSocketListener&) = delete;
  UnixSocketListener& operator=(const UnixSocketListener&) = delete;

 private:
  UnixSocketListener(UnixSocketOptions options, int listen_fd, int wake_fd,
                     grpc::Server* server, PeerIdentity* peers);
  void AcceptLoop();

  const UnixSocketOptions options_;
  const std::string& path_ = options_.path;
  const int listen_fd_;
  const int wake_fd_;  // an eventfd that ends AcceptLoop
  grpc::Server* const server_;
  PeerIdentity* const peers_;
  uint64_t refused_ = 0;  // connections closed for the per-uid limit
  std::thread thread_;
};

// "0660" -> 0660; INVALID_ARGUMENT for anything but 3 or 4 octal digits.
absl::StatusOr<mode_t> ParseFileMode(absl::string_view text);

}  // namespace tensorpager::server

#endif  // TENSORPAGER_SERVER_UNIX_SOCKET_LISTENER_H_
