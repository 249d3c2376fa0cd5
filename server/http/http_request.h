// The little of HTTP/1.x request parsing a scrape endpoint needs: find the
// end of the head, read the request line. Headers are not interpreted
// (every response closes the connection and no request has a body worth
// reading).
#ifndef TENSORPAGER_SERVER_HTTP_HTTP_REQUEST_H_
#define TENSORPAGER_SERVER_HTTP_HTTP_REQUEST_H_

#include <cstddef>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tensorpager::http {

struct HttpRequest {
  std::string method;  // as sent; methods are case-sensitive
  std::string path;    // the target without its query string
  // The Authorization header's value; empty when there is none.
  std::string authorization;
};

// The length of the request head (request line and headers, through the
// empty line that ends them), or nullopt while it is incomplete. Accepts
// CRLF and, as RFC 9112 allows, bare LF line ends.
std::optional<size_t> RequestHeadLength(absl::string_view data);

// Parses the request line of a complete head, and the Authorization header
// (the only one the server reads): INVALID_ARGUMENT (answer
// 400) for a malformed line or a target that is not a path, UNIMPLEMENTED
// (answer 505) for an HTTP version other than 1.0 and 1.1.
absl::StatusOr<HttpRequest> ParseRequestLine(absl::string_view head);

}  // namespace tensorpager::http

#endif  // TENSORPAGER_SERVER_HTTP_HTTP_REQUEST_H_
