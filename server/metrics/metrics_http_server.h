// The Prometheus scrape endpoint: a small HTTP/1.1 server on one thread.
//   GET /metrics  the registry in text format 0.0.4
//   GET /         a short page linking to /metrics
//   other paths   404; other methods on these paths 405 (HEAD is served)
// Every response closes its connection. One poll() loop multiplexes the
// connections, so a slow or silent client delays nobody; each connection
// gets `request_timeout` to send its request head (then 408) and
// `io_timeout` to read the response, and a head longer than
// `max_request_bytes` is refused with 431. When every slot is taken, a new
// connection closes the oldest one still waiting for its request (one that
// sent nothing first): idle sockets cannot keep a scraper in the backlog.
#ifndef TENSORPAGER_SERVER_METRICS_METRICS_HTTP_SERVER_H_
#define TENSORPAGER_SERVER_METRICS_METRICS_HTTP_SERVER_H_

#include <cstddef>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/metrics/registry.h"
#include "server/metrics/scoped_fd.h"

namespace tensorpager::metrics {

struct MetricsHttpServerOptions {
  // host:port (see host_port.h); port 0 picks a free one, see port().
  std::string address = "0.0.0.0:9464";
  // Scrapers send their request as they connect: a connection that has not
  // sent a whole head this long after it was accepted is idle or stalling.
  absl::Duration request_timeout = absl::Seconds(2);
  absl::Duration io_timeout = absl::Seconds(10);
  size_t max_request_bytes = 8 * 1024;
  // Open connections. Beyond this, a new one closes the oldest connection
  // still waiting for its request; only while every connection is being
  // answered do new ones wait in the listen backlog.
  int max_connections = 64;
};

class MetricsHttpServer {
 public:
  // Listens on options.address and serves `registry`, which must outlive
  // the server. INVALID_ARGUMENT for a malformed address or option,
  // UNAVAILABLE when the port is taken, PERMISSION_DENIED for a privileged
  // port.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const Registry* registry, MetricsHttpServerOptions options);

  // Stops the thread at once (open connections are closed) and joins it.
  ~MetricsHttpServer();
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  // The port bound, the kernel's choice when the address said 0.
  int port() const { return port_; }

 private:
  MetricsHttpServer(const Registry* registry, MetricsHttpServerOptions options,
                    ScopedFd listen_fd, ScopedFd wake_fd, int port);

  void Run();

  const Registry* const registry_;
  const MetricsHttpServerOptions options_;
  const ScopedFd listen_fd_;
  // An eventfd the destructor signals to end Run() promptly.
  const ScopedFd wake_fd_;
  const int port_;
  std::thread thread_;
};

}  // namespace tensorpager::metrics

#endif  // TENSORPAGER_SERVER_METRICS_METRICS_HTTP_SERVER_H_
