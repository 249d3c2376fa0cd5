// A small HTTP/1.1 server on one thread; what it serves is the handler's
// business (the Prometheus scrape endpoint, metrics_http_server.h, is one).
// Every response closes its connection. One poll() loop multiplexes the
// connections, so a slow or silent client delays nobody; each connection
// gets `request_timeout` to send its request head (then 408) and
// `io_timeout` to read the response, and a head longer than
// `max_request_bytes` is refused with 431. When every slot is taken, a new
// connection closes the oldest one still waiting for its request (one that
// sent nothing first): idle sockets cannot keep a scraper in the backlog.
#ifndef TENSORPAGER_SERVER_HTTP_HTTP_SERVER_H_
#define TENSORPAGER_SERVER_HTTP_HTTP_SERVER_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/http/http_request.h"
#include "server/http/http_response.h"
#include "server/http/scoped_fd.h"
#include "server/http/tls_stream.h"

namespace tensorpager::http {

struct HttpServerOptions {
  // host:port (see host_port.h); port 0 picks a free one, see port().
  std::string address;
  // Scrapers send their request as they connect: a connection that has not
  // sent a whole head this long after it was accepted is idle or stalling.
  absl::Duration request_timeout = absl::Seconds(2);
  absl::Duration io_timeout = absl::Seconds(10);
  size_t max_request_bytes = 8 * 1024;
  // Open connections. Beyond this, a new one closes the oldest connection
  // still waiting for its request; only while every connection is being
  // answered do new ones wait in the listen backlog.
  int max_connections = 64;
  // Names the server in its errors and log lines ("metrics server").
  std::string name = "http server";
  // Set (tls.cert): HTTPS, see tls_stream.h.
  TlsFiles tls = {};
};

class HttpServer {
 public:
  // Called on the server's thread, one request at a time.
  using Handler = std::function<HttpResponse(const HttpRequest&)>;

  // Listens on options.address and answers every request with `handler`.
  // INVALID_ARGUMENT for a malformed address or option, UNAVAILABLE when
  // the port is taken, PERMISSION_DENIED for a privileged port,
  // FAILED_PRECONDITION for TLS files that do not load.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      HttpServerOptions options, Handler handler);

  // Stops the thread at once (open connections are closed) and joins it.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The port bound, the kernel's choice when the address said 0.
  int port() const { return port_; }

 private:
  HttpServer(HttpServerOptions options, Handler handler, ScopedFd listen_fd,
             ScopedFd wake_fd, int port, std::unique_ptr<TlsServerContext> tls);

  void Run();

  const HttpServerOptions options_;
  const Handler handler_;
  const ScopedFd listen_fd_;
  // An eventfd the destructor signals to end Run() promptly.
  const ScopedFd wake_fd_;
  const int port_;
  const std::unique_ptr<TlsServerContext> tls_;  // null: plain HTTP
  std::thread thread_;
};

}  // namespace tensorpager::http

#endif  // TENSORPAGER_SERVER_HTTP_HTTP_SERVER_H_
