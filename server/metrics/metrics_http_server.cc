#include "server/metrics/metrics_http_server.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "server/metrics/text_format.h"
#include "storage/base/log.h"

namespace tensorpager::metrics {
namespace {

using http::HttpRequest;
using http::HttpResponse;

constexpr absl::string_view kIndexPage =
    "<!DOCTYPE html>\n"
    "<html><head><title>tensorpagerd</title></head><body>\n"
    "<h1>tensorpagerd</h1>\n"
    "<p>Prometheus metrics: <a href=\"/metrics\">/metrics</a></p>\n"
    "</body></html>\n";

HttpResponse Route(const HttpRequest& request, const Registry& registry,
                   const MetricsHttpServerOptions& options) {
  HttpResponse response;
  const bool known = request.path == "/metrics" || request.path == "/";
  if (!known) {
    response.status = 404;
    response.body = absl::StrCat("no page at ", request.path,
                                 "; metrics are at /metrics\n");
    return response;
  }
  if (request.method != "GET" && request.method != "HEAD") {
    response.status = 405;
    response.allow = "GET, HEAD";
    response.body = absl::StrCat(request.method, " is not allowed on ",
                                 request.path, "; use GET\n");
    return response;
  }
  if (options.authorize && request.path == "/metrics" &&
      !options.authorize(request.authorization)) {
    response.status = 401;
    response.www_authenticate = "Bearer";
    response.body =
        "/metrics needs 'Authorization: Bearer <token>' with an admin "
        "tenant's token (--metrics_require_token; Prometheus: "
        "authorization.credentials_file)\n";
    return response;
  }
  if (request.path == "/") {
    response.content_type = "text/html; charset=utf-8";
    response.body = std::string(kIndexPage);
    return response;
  }
  absl::StatusOr<std::string> text = registry.Render();
  if (!text.ok()) {
    TP_LOG(ERROR) << "metrics scrape failed: " << text.status();
    response.status = 500;
    response.body = absl::StrCat(text.status().ToString(), "\n");
    return response;
  }
  response.content_type = std::string(kTextFormatContentType);
  response.body = *std::move(text);
  return response;
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const Registry* registry, MetricsHttpServerOptions options) {
  if (registry == nullptr) {
    return absl::InvalidArgumentError("metrics server needs a registry");
  }
  http::HttpServerOptions http_options{
      .address = std::move(options.address),
      .request_timeout = options.request_timeout,
      .io_timeout = options.io_timeout,
      .max_request_bytes = options.max_request_bytes,
      .max_connections = options.max_connections,
      .name = "metrics server",
      .tls = options.tls};
  absl::StatusOr<std::unique_ptr<http::HttpServer>> http =
      http::HttpServer::Start(std::move(http_options),
                              [registry, options](const HttpRequest& request) {
                                return Route(request, *registry, options);
                              });
  if (!http.ok()) return http.status();
  return std::unique_ptr<MetricsHttpServer>(
      new MetricsHttpServer(*std::move(http)));
}

MetricsHttpServer::~MetricsHttpServer() = default;

}  // namespace tensorpager::metrics
