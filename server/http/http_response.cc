#include "server/http/http_response.h"

#include "absl/strings/str_cat.h"

namespace tensorpager::http {

absl::string_view ReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 505:
      return "HTTP Version Not Supported";
  }
  // The reason phrase is informative only (RFC 9112 section 4).
  return "Unknown";
}

std::string SerializeResponse(const HttpResponse& response, bool head_only) {
  std::string out = absl::StrCat("HTTP/1.1 ", response.status, " ",
                                 ReasonPhrase(response.status),
                                 "\r\nContent-Type: ", response.content_type,
                                 "\r\nContent-Length: ", response.body.size(),
                                 "\r\nConnection: close\r\n");
  if (!response.allow.empty()) {
    absl::StrAppend(&out, "Allow: ", response.allow, "\r\n");
  }
  if (!response.www_authenticate.empty()) {
    absl::StrAppend(&out, "WWW-Authenticate: ", response.www_authenticate,
                    "\r\n");
  }
  out.append("\r\n");
  if (!head_only) out.append(response.body);
  return out;
}

}  // namespace tensorpager::http
