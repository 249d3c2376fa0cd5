// Who is at the other end of a gRPC connection on this host. The
// shared-memory path hands a client's memory to the server, so the server
// must know the caller's user before it opens or serves any segment: a
// caller's word (a pid, a segment id) is never enough.
//
// For a loopback TCP peer the kernel knows the user that owns the client's
// socket: /proc/net/tcp{,6} lists it beside the socket's address, and the
// peer's address and port name exactly one established client socket.
#ifndef TENSORPAGER_SERVER_PEER_IDENTITY_H_
#define TENSORPAGER_SERVER_PEER_IDENTITY_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "storage/base/shared_mutex.h"

namespace tensorpager::server {

// A loopback endpoint as gRPC names it ("ipv4:127.0.0.1:5000",
// "ipv6:[::1]:5000", "ipv6:%5B::1%5D:5000").
struct LoopbackEndpoint {
  bool v6 = false;
  std::string address;  // 127.x.y.z or ::1
  uint16_t port = 0;
};
std::optional<LoopbackEndpoint> ParseLoopbackPeer(absl::string_view peer);

// The uid owning the established socket whose local address is `peer`,
// found in a /proc/net/tcp-format table (`table` is its text); nullopt
// when no socket, or sockets of different users, match.
std::optional<uid_t> UidOfSocket(absl::string_view table,
                                 const LoopbackEndpoint& peer);

// Looks peers up in /proc/net, remembering each for a few seconds: the
// shared-memory RPCs ask on every call.
class PeerIdentity {
 public:
  explicit PeerIdentity(std::string proc_net = "/proc/net")
      : proc_net_(std::move(proc_net)) {}
  // The user of a loopback TCP peer, or of a Unix-socket peer the
  // listener noted; nullopt for any other peer (remote) or when the kernel
  // does not say.
  std::optional<uid_t> UidOf(const std::string& grpc_peer);

  // A connection accepted on the Unix socket (unix_socket_listener.h) and
  // handed to gRPC as descriptor `fd`: gRPC names its peer "fd:<fd>", and
  // the kernel named its user (SO_PEERCRED) at accept. A later connection
  // on the same descriptor number replaces the entry.
  void NoteUnixPeer(int fd, uid_t uid);
  // How many noted connections of `uid` are still open. gRPC closes a
  // descriptor without telling anyone, so each is checked: still open,
  // and still the socket that was noted (its inode); closed ones are
  // forgotten.
  size_t OpenUnixConnections(uid_t uid);

 private:
  struct Known {
    uid_t uid;
    absl::Time until;
  };
  const std::string proc_net_;
  SharedMutex mu_;
  absl::flat_hash_map<std::string, Known> known_ ABSL_GUARDED_BY(mu_);
  struct UnixPeer {
    uid_t uid;
    ino_t inode;  // of the socket, to tell it from a reused descriptor
  };
  absl::flat_hash_map<int, UnixPeer> unix_peers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tensorpager::server

#endif  // TENSORPAGER_SERVER_PEER_IDENTITY_H_
