#include "server/unix_socket_listener.h"

#include <grp.h>
#include <grpcpp/server.h>
#include <grpcpp/server_posix.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "storage/base/log.h"

namespace tensorpager::server {
namespace {

absl::Status Failed(const std::string& what, int err) {
  return absl::FailedPreconditionError(
      absl::StrCat(what, ": ", std::strerror(err)));
}

}  // namespace

absl::StatusOr<mode_t> ParseFileMode(absl::string_view text) {
  if (text.size() < 3 || text.size() > 4) {
    return absl::InvalidArgumentError(absl::StrCat(
        "file mode '", text, "' is not 3 or 4 octal digits, e.g. 0660"));
  }
  mode_t mode = 0;
  for (char c : text) {
    if (c < '0' || c > '7') {
      return absl::InvalidArgumentError(absl::StrCat(
          "file mode '", text, "' is not octal (digits 0 to 7), e.g. 0660"));
    }
    mode = mode * 8 + static_cast<mode_t>(c - '0');
  }
  return mode;
}

absl::StatusOr<std::unique_ptr<UnixSocketListener>> UnixSocketListener::Start(
    UnixSocketOptions o, grpc::Server* server, PeerIdentity* peers) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (o.path.empty() || o.path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--unix_socket '", o.path, "' must be 1 to ",
                     sizeof(addr.sun_path) - 1, " bytes long"));
  }
  std::memcpy(addr.sun_path, o.path.data(), o.path.size());
  gid_t gid = static_cast<gid_t>(-1);
  if (!o.group.empty()) {
    const group* g = getgrnam(o.group.c_str());
    if (g == nullptr) {
      return absl::FailedPreconditionError(absl::StrCat(
          "--unix_socket_group '", o.group, "' is not a group of this host"));
    }
    gid = g->gr_gid;
  }
  // A socket left by a server that died is replaced; any other file at
  // the path is the operator's and stays.
  struct stat st;
  if (lstat(o.path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat("--unix_socket ", o.path,
                       " exists and is not a socket; remove it or pick "
                       "another path"));
    }
    unlink(o.path.c_str());
  }
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Failed("socket(AF_UNIX)", errno);
  // Created with no access, then given its mode: no moment where the
  // umask's looser mode applies.
  const mode_t old_umask = umask(0777);
  const int bound =
      bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  const int bind_errno = errno;
  umask(old_umask);
  if (bound != 0) {
    close(fd);
    return Failed(absl::StrCat("binding --unix_socket ", o.path), bind_errno);
  }
  if (chown(o.path.c_str(), static_cast<uid_t>(-1), gid) != 0 ||
      chmod(o.path.c_str(), o.mode) != 0 || listen(fd, 128) != 0) {
    const int err = errno;
    close(fd);
    unlink(o.path.c_str());
    return Failed(absl::StrCat("setting up --unix_socket ", o.path), err);
  }
  const int wake = eventfd(0, EFD_CLOEXEC);
  if (wake < 0) {
    const int err = errno;
    close(fd);
    unlink(o.path.c_str());
    return Failed("eventfd", err);
  }
  const std::string path = o.path;
  const mode_t mode = o.mode;
  std::unique_ptr<UnixSocketListener> listener(
      new UnixSocketListener(std::move(o), fd, wake, server, peers));
  listener->thread_ = std::thread([l = listener.get()] { l->AcceptLoop(); });
  TP_LOG(INFO) << "serving on Unix socket " << path << " (mode "
               << absl::StrCat(absl::Hex(mode)) << ")";
  return listener;
}

UnixSocketListener::UnixSocketListener(UnixSocketOptions options, int listen_fd,
                                       int wake_fd, grpc::Server* server,
                                       PeerIdentity* peers)
    : options_(std::move(options)),
      listen_fd_(listen_fd),
      wake_fd_(wake_fd),
      server_(server),
      peers_(peers) {}

UnixSocketListener::~UnixSocketListener() {
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
  close(listen_fd_);
  close(wake_fd_);
  unlink(path_.c_str());
}

void UnixSocketListener::AcceptLoop() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      TP_LOG(ERROR) << "Unix socket " << path_
                    << ": poll failed: " << std::strerror(errno);
      return;
    }
    if (fds[1].revents != 0) return;
    const int conn =
        accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (conn < 0) continue;  // EAGAIN, or a peer that left already
    ucred cred{};
    socklen_t length = sizeof(cred);
    if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &length) != 0) {
      close(conn);
      continue;
    }
    if (peers_->OpenUnixConnections(cred.uid) >=
        options_.max_connections_per_uid) {
      // The first refusal and then every 1000th: a client retrying in a
      // loop does not flood the log. Logged before the close, so the peer
      // that sees the close can find the reason in the log.
      if (refused_++ % 1000 == 0) {
        TP_LOG(WARNING) << "Unix socket " << path_ << ": user " << cred.uid
                        << " (pid " << cred.pid << ") already holds "
                        << options_.max_connections_per_uid
                        << " connections; closed a new one (" << refused_
                        << " so far). Close idle clients or raise "
                        << "--unix_socket_max_connections_per_uid";
      }
      close(conn);
      continue;
    }
    // Noted before gRPC sees the connection, so its first call finds it.
    peers_->NoteUnixPeer(conn, cred.uid);
    grpc::AddInsecureChannelFromFd(server_, conn);
  }
}

}  // namespace tensorpager::server
