#include "server/http/http_request.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace tensorpager::http {
namespace {

// RFC 9110 token characters, the alphabet of method names.
bool IsTokenChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         absl::string_view("!#$%&'*+-.^_`|~").find(c) !=
             absl::string_view::npos;
}

// Printable ASCII without space: what a request target may contain.
bool IsTargetChar(char c) { return c > ' ' && c < 0x7f; }

}  // namespace

std::optional<size_t> RequestHeadLength(absl::string_view data) {
  for (size_t i = 0; i < data.size(); ++i) {
    if (data[i] != '\n') continue;
    // A line end followed directly by another one: "\n\n" or "\n\r\n".
    if (i + 1 < data.size() && data[i + 1] == '\n') return i + 2;
    if (i + 2 < data.size() && data[i + 1] == '\r' && data[i + 2] == '\n') {
      return i + 3;
    }
  }
  return std::nullopt;
}

absl::StatusOr<HttpRequest> ParseRequestLine(absl::string_view head) {
  absl::string_view line = head.substr(0, head.find('\n'));
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  const std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
  if (parts.size() != 3 || parts[0].empty() || parts[1].empty()) {
    return absl::InvalidArgumentError(
        "malformed request line; expected \"METHOD /path HTTP/1.1\"");
  }
  for (char c : parts[0]) {
    if (!IsTokenChar(c)) {
      return absl::InvalidArgumentError("malformed method in request line");
    }
  }
  for (char c : parts[1]) {
    if (!IsTargetChar(c)) {
      return absl::InvalidArgumentError("malformed target in request line");
    }
  }
  if (parts[1].front() != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("request target \"", parts[1], "\" is not a path"));
  }
  const absl::string_view version = parts[2];
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    if (absl::StartsWith(version, "HTTP/")) {
      return absl::UnimplementedError(
          absl::StrCat(version, " is not supported; use HTTP/1.1"));
    }
    return absl::InvalidArgumentError("malformed version in request line");
  }
  const absl::string_view target = parts[1];
  HttpRequest request{std::string(parts[0]),
                      std::string(target.substr(0, target.find('?'))), ""};
  for (absl::string_view header :
       absl::StrSplit(head.substr(head.find('\n') + 1), '\n')) {
    const size_t colon = header.find(':');
    if (colon == absl::string_view::npos) continue;
    if (absl::EqualsIgnoreCase(header.substr(0, colon), "authorization")) {
      request.authorization =
          std::string(absl::StripAsciiWhitespace(header.substr(colon + 1)));
    }
  }
  return request;
}

}  // namespace tensorpager::http
