// The Prometheus scrape endpoint: a small HTTP/1.1 server on one thread.
//   GET /metrics  the registry in text format 0.0.4
//   GET /         a short page linking to /metrics
//   other paths   404; other methods on these paths 405 (HEAD is served)
// The connections, their limits and the thread are http::HttpServer's
// (server/http/http_server.h); this file holds the routes.
#ifndef TENSORPAGER_SERVER_METRICS_METRICS_HTTP_SERVER_H_
#define TENSORPAGER_SERVER_METRICS_METRICS_HTTP_SERVER_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/http/http_server.h"
#include "server/metrics/registry.h"

namespace tensorpager::metrics {

// The fields of http::HttpServerOptions (server/http/http_server.h), which
// says what they mean, with the scrape endpoint's address.
struct MetricsHttpServerOptions {
  std::string address = "0.0.0.0:9464";
  absl::Duration request_timeout = absl::Seconds(2);
  absl::Duration io_timeout = absl::Seconds(10);
  size_t max_request_bytes = 8 * 1024;
  int max_connections = 64;
  // Set: a scrape of /metrics must carry an Authorization header this
  // accepts ("Bearer <token>"); others get 401.
  std::function<bool(absl::string_view authorization)> authorize = nullptr;
  // Set (tls.cert): HTTPS (server/http/tls_stream.h).
  http::TlsFiles tls = {};
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
  int port() const { return http_->port(); }

 private:
  explicit MetricsHttpServer(std::unique_ptr<http::HttpServer> http)
      : http_(std::move(http)) {}

  const std::unique_ptr<http::HttpServer> http_;
};

}  // namespace tensorpager::metrics

#endif  // TENSORPAGER_SERVER_METRICS_METRICS_HTTP_SERVER_H_
