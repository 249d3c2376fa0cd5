// An HTTP/1.1 response of the HTTP server (http_server.h) and its wire
// form.
#ifndef TENSORPAGER_SERVER_HTTP_HTTP_RESPONSE_H_
#define TENSORPAGER_SERVER_HTTP_HTTP_RESPONSE_H_

#include <string>

#include "absl/strings/string_view.h"

namespace tensorpager::http {

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  // Sent as an Allow header when not empty (405 responses).
  std::string allow;
  // Sent as a WWW-Authenticate header when not empty (401 responses).
  std::string www_authenticate;
};

// "OK", "Not Found", ... for the codes this server sends.
absl::string_view ReasonPhrase(int status);

// Status line, headers (Content-Type, Content-Length, Connection: close,
// Allow) and, unless `head_only` (a HEAD request), the body.
std::string SerializeResponse(const HttpResponse& response, bool head_only);

}  // namespace tensorpager::http

#endif  // TENSORPAGER_SERVER_HTTP_HTTP_RESPONSE_H_
