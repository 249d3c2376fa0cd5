#include "server/http/http_server.h"

#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "server/http/host_port.h"
#include "server/http/http_connection.h"
#include "storage/base/log.h"

namespace tensorpager::http {
namespace {

using Clock = HttpConnection::Clock;

constexpr int kListenBacklog = 128;
// After accept() fails for lack of descriptors or memory, the listening
// socket stays readable; waiting this long keeps the loop from spinning.
constexpr Clock::duration kAcceptBackoff = std::chrono::milliseconds(100);

absl::Status ListenError(absl::string_view address, int error) {
  const std::string message =
      absl::StrCat("cannot listen on ", address, ": ", std::strerror(error));
  switch (error) {
    case EADDRINUSE:
      return absl::UnavailableError(
          absl::StrCat(message, "; pick another port"));
    case EACCES:
      return absl::PermissionDeniedError(
          absl::StrCat(message, "; ports below 1024 need privileges"));
    case EADDRNOTAVAIL:
      return absl::InvalidArgumentError(absl::StrCat(
          message, "; the host is not an address of this machine"));
    default:
      return absl::UnavailableError(message);
  }
}

// A non-blocking listening socket on the first address `host_port`
// resolves to that accepts a bind.
absl::StatusOr<ScopedFd> Listen(absl::string_view address,
                                const HostPort& host_port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* resolved = nullptr;
  const std::string port = std::to_string(host_port.port);
  const int gai =
      ::getaddrinfo(host_port.host.empty() ? nullptr : host_port.host.c_str(),
                    port.c_str(), &hints, &resolved);
  if (gai != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot resolve the host of ", address, ": ", ::gai_strerror(gai)));
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owner(resolved,
                                                             &::freeaddrinfo);
  int last_error = EADDRNOTAVAIL;
  for (const addrinfo* ai = resolved; ai != nullptr; ai = ai->ai_next) {
    ScopedFd fd(::socket(ai->ai_family,
                         ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                         ai->ai_protocol));
    if (!fd.valid()) {
      last_error = errno;
      continue;
    }
    // A restarted daemon must not wait out TIME_WAIT to get its port back.
    const int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0 ||
        ::listen(fd.get(), kListenBacklog) != 0) {
      last_error = errno;
      continue;
    }
    return fd;
  }
  return ListenError(address, last_error);
}

absl::StatusOr<int> BoundPort(int fd) {
  sockaddr_storage addr{};
  socklen_t length = sizeof(addr);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) != 0) {
    return absl::InternalError(
        absl::StrCat("getsockname: ", std::strerror(errno)));
  }
  if (addr.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_port);
  }
  return ntohs(reinterpret_cast<const sockaddr_in*>(&addr)->sin_port);
}

// Milliseconds until the earliest deadline, for poll(); -1 (wait for
// events only) when there is none.
int PollTimeoutMs(Clock::time_point now,
                  const std::vector<Clock::time_point>& deadlines) {
  if (deadlines.empty()) return -1;
  const Clock::time_point earliest =
      *std::min_element(deadlines.begin(), deadlines.end());
  if (earliest <= now) return 0;
  // Round up so that a wake-up is never early, which would spin.
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(earliest - now);
  return static_cast<int>(std::min<int64_t>(ms.count(), 60'000));
}

// The connection to close when every slot is taken and another client
// connects: the oldest that has sent nothing, else the oldest still
// sending its request head. nullptr while every connection is being
// answered; those finish within their deadlines. `connections` is in
// accept order.
HttpConnection* SlotToReclaim(
    const std::vector<std::unique_ptr<HttpConnection>>& connections) {
  HttpConnection* partial = nullptr;
  for (const auto& c : connections) {
    if (c->silent()) return c.get();
    if (partial == nullptr && c->awaiting_request()) partial = c.get();
  }
  return partial;
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(
    HttpServerOptions options, Handler handler) {
  if (!handler) {
    return absl::InvalidArgumentError(
        absl::StrCat(options.name, " needs a handler"));
  }
  if (options.request_timeout <= absl::ZeroDuration() ||
      options.io_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        options.name, " timeouts must be positive, got request_timeout ",
        absl::FormatDuration(options.request_timeout), " and io_timeout ",
        absl::FormatDuration(options.io_timeout)));
  }
  // Room for a request line with a few ordinary headers.
  if (options.max_request_bytes < 256) {
    return absl::InvalidArgumentError(
        absl::StrCat(options.name, " max_request_bytes must be >= 256, got ",
                     options.max_request_bytes));
  }
  if (options.max_connections < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(options.name, " max_connections must be >= 1, got ",
                     options.max_connections));
  }
  std::unique_ptr<TlsServerContext> tls;
  if (!options.tls.cert.empty()) {
    absl::StatusOr<std::unique_ptr<TlsServerContext>> loaded =
        TlsServerContext::Load(options.tls, options.name);
    if (!loaded.ok()) {
      return absl::Status(
          loaded.status().code(),
          absl::StrCat(options.name, ": ", loaded.status().message()));
    }
    tls = *std::move(loaded);
  }
  absl::StatusOr<HostPort> host_port = ParseHostPort(options.address);
  if (!host_port.ok()) return host_port.status();
  absl::StatusOr<ScopedFd> listen_fd = Listen(options.address, *host_port);
  if (!listen_fd.ok()) return listen_fd.status();
  absl::StatusOr<int> port = BoundPort(listen_fd->get());
  if (!port.ok()) return port.status();
  ScopedFd wake_fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake_fd.valid()) {
    return absl::ResourceExhaustedError(
        absl::StrCat("eventfd: ", std::strerror(errno)));
  }
  std::unique_ptr<HttpServer> server(new HttpServer(
      std::move(options), std::move(handler), *std::move(listen_fd),
      std::move(wake_fd), *port, std::move(tls)));
  server->thread_ = std::thread([s = server.get()] { s->Run(); });
  return server;
}

HttpServer::HttpServer(HttpServerOptions options, Handler handler,
                       ScopedFd listen_fd, ScopedFd wake_fd, int port,
                       std::unique_ptr<TlsServerContext> tls)
    : options_(std::move(options)),
      handler_(std::move(handler)),
      listen_fd_(std::move(listen_fd)),
      wake_fd_(std::move(wake_fd)),
      port_(port),
      tls_(std::move(tls)) {}

HttpServer::~HttpServer() {
  const uint64_t one = 1;
  // An eventfd write only fails when the counter would overflow, which
  // one write per server cannot do.
  [[maybe_unused]] const ssize_t n = ::write(wake_fd_.get(), &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
}

void HttpServer::Run() {
  const HttpConnection::Limits limits{
      .request_timeout = absl::ToChronoNanoseconds(options_.request_timeout),
      .io_timeout = absl::ToChronoNanoseconds(options_.io_timeout),
      .max_request_bytes = options_.max_request_bytes};
  const size_t max_connections = static_cast<size_t>(options_.max_connections);
  const HttpConnection::Handler handler = handler_;
  std::vector<std::unique_ptr<HttpConnection>> connections;
  std::vector<pollfd> fds;
  std::vector<Clock::time_point> deadlines;
  Clock::time_point accept_resumes{};

  while (true) {
    Clock::time_point now = Clock::now();
    const bool room = connections.size() < max_connections ||
                      SlotToReclaim(connections) != nullptr;
    const bool accepting = room && now >= accept_resumes;
    fds.clear();
    deadlines.clear();
    fds.push_back({wake_fd_.get(), POLLIN, 0});
    // poll() skips negative descriptors: the listening socket is left out
    // while every connection is being answered, or while backing off.
    fds.push_back({accepting ? listen_fd_.get() : -1, POLLIN, 0});
    if (room && !accepting) deadlines.push_back(accept_resumes);
    for (const auto& c : connections) {
      fds.push_back({c->fd(), c->poll_events(), 0});
      deadlines.push_back(c->deadline());
    }
    if (::poll(fds.data(), fds.size(), PollTimeoutMs(now, deadlines)) < 0) {
      if (errno != EINTR) {
        TP_LOG(WARNING) << options_.name << ": poll: " << std::strerror(errno);
      }
      continue;
    }
    if (fds[0].revents != 0) return;  // the destructor asked us to stop

    now = Clock::now();
    for (size_t i = 0; i < connections.size(); ++i) {
      HttpConnection& c = *connections[i];
      if (fds[i + 2].revents != 0) c.OnReady(fds[i + 2].revents, now, handler);
      if (!c.closed() && now >= c.deadline()) c.OnDeadline(now);
    }
    std::erase_if(connections, [](const auto& c) { return c->closed(); });

    if ((fds[1].revents & POLLIN) == 0) continue;
    // At most a full set of connections per round, so that a flood of
    // connects cannot keep the loop from the others.
    for (size_t round = 0; round < max_connections; ++round) {
      HttpConnection* reclaim = nullptr;
      if (connections.size() >= max_connections) {
        reclaim = SlotToReclaim(connections);
        if (reclaim == nullptr) break;
      }
      ScopedFd fd(::accept4(listen_fd_.get(), nullptr, nullptr,
                            SOCK_NONBLOCK | SOCK_CLOEXEC));
      if (fd.valid()) {
        if (reclaim != nullptr) {
          reclaim->Evict();
          std::erase_if(connections, [](const auto& c) { return c->closed(); });
        }
        std::unique_ptr<ByteStream> stream =
            tls_ != nullptr ? TlsStream(std::move(fd), tls_->Current())
                            : PlainStream(std::move(fd));
        if (stream == nullptr) continue;  // OpenSSL out of memory
        auto c =
            std::make_unique<HttpConnection>(std::move(stream), limits, now);
        // A scraper's request is usually here already: answer it now, so
        // that it is past the request stage before another connect could
        // reclaim its slot.
        c->OnReady(POLLIN, now, handler);
        if (!c->closed()) connections.push_back(std::move(c));
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      // The client went away between connect and accept, or a signal.
      if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
      TP_LOG(WARNING) << options_.name << ": accept: " << std::strerror(errno)
                      << "; pausing new connections briefly";
      accept_resumes = now + kAcceptBackoff;
      break;
    }
  }
}

}  // namespace tensorpager::http
