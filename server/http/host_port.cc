#include "server/http/host_port.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace tensorpager::http {

absl::StatusOr<HostPort> ParseHostPort(absl::string_view address) {
  absl::string_view host;
  absl::string_view port_text;
  if (!address.empty() && address.front() == '[') {
    const size_t close = address.find(']');
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "address \"", address, "\" opens '[' without closing it"));
    }
    host = address.substr(1, close - 1);
    const absl::string_view rest = address.substr(close + 1);
    if (rest.empty() || rest.front() != ':') {
      return absl::InvalidArgumentError(absl::StrCat(
          "address \"", address, "\" needs \":port\" after the ']'"));
    }
    port_text = rest.substr(1);
  } else {
    const size_t colon = address.rfind(':');
    if (colon == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "address \"", address, "\" has no port; write host:port"));
    }
    host = address.substr(0, colon);
    if (host.find(':') != absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("address \"", address,
                       "\": write an IPv6 host in brackets, [::1]:9464"));
    }
    port_text = address.substr(colon + 1);
  }
  uint32_t port = 0;
  if (port_text.empty() ||
      port_text.find_first_not_of("0123456789") != absl::string_view::npos ||
      !absl::SimpleAtoi(port_text, &port) || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("address \"", address, "\": port \"", port_text,
                     "\" is not a number in [0, 65535]"));
  }
  return HostPort{std::string(host), static_cast<uint16_t>(port)};
}

}  // namespace tensorpager::http
