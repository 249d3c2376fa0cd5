// "host:port" listen addresses, as gRPC spells them.
#ifndef TENSORPAGER_SERVER_HTTP_HOST_PORT_H_
#define TENSORPAGER_SERVER_HTTP_HOST_PORT_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tensorpager::http {

struct HostPort {
  std::string host;   // empty: every interface
  uint16_t port = 0;  // 0: the kernel picks a free port
};

// Accepts "0.0.0.0:9464", "localhost:0", "[::1]:9464", "[::]:9464" and
// ":9464" (every interface). INVALID_ARGUMENT for a missing or
// non-numeric port, a port above 65535, or an unclosed '['.
absl::StatusOr<HostPort> ParseHostPort(absl::string_view address);

}  // namespace tensorpager::http

#endif  // TENSORPAGER_SERVER_HTTP_HOST_PORT_H_
