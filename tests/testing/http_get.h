// A minimal HTTP/1.0 GET over loopback for tests (metrics, Prometheus API),
// plain or over TLS.
#ifndef TENSORPAGER_TESTS_TESTING_HTTP_GET_H_
#define TENSORPAGER_TESTS_TESTING_HTTP_GET_H_

#include <string>

#include "absl/status/statusor.h"

namespace tensorpager::testing {

struct HttpResponse {
  int status = 0;
  std::string body;
};

// GET http://127.0.0.1:`port``path`; UNAVAILABLE when nothing listens.
// A non-empty `authorization` is sent as the Authorization header.
absl::StatusOr<HttpResponse> HttpGet(int port, const std::string& path,
                                     const std::string& authorization = "");

// The same over TLS: the server's certificate must be signed by `ca_file`;
// `cert_file`/`key_file` (both or neither) are the client's certificate.
// UNAVAILABLE when the handshake fails, saying why.
struct TlsClientFiles {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
};
absl::StatusOr<HttpResponse> HttpsGet(int port, const std::string& path,
                                      const TlsClientFiles& tls);

// A port nothing listens on right now (the kernel's pick, released).
int FreePort();

// URL-encodes a query parameter value.
std::string UrlEncode(const std::string& s);

}  // namespace tensorpager::testing

#endif  // TENSORPAGER_TESTS_TESTING_HTTP_GET_H_
