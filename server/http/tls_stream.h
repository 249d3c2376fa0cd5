// TLS for the HTTP server (--metrics_tls): a server context made from
// certificate files, and a byte stream that speaks TLS over an accepted
// socket. The handshake happens on the stream's first reads and writes,
// inside the server's poll() loop, so a slow or silent client holds only
// its own connection.
#ifndef TENSORPAGER_SERVER_HTTP_TLS_STREAM_H_
#define TENSORPAGER_SERVER_HTTP_TLS_STREAM_H_

#include <openssl/ssl.h>
#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/http/byte_stream.h"
#include "server/http/scoped_fd.h"

namespace tensorpager::http {

struct TlsFiles {
  std::string cert;       // PEM certificate chain
  std::string key;        // PEM private key
  std::string client_ca;  // set: clients must show a certificate it signed
};

// The context new connections use, made again when a file changes
// (checked at most every two seconds, on the server's thread), so a
// renewed certificate needs no restart. A renewal that does not load is
// logged and the previous context stays.
class TlsServerContext {
 public:
  // FAILED_PRECONDITION naming the file that does not load.
  static absl::StatusOr<std::unique_ptr<TlsServerContext>> Load(
      TlsFiles files, std::string name);

  std::shared_ptr<SSL_CTX> Current();

 private:
  TlsServerContext(TlsFiles files, std::string name,
                   std::shared_ptr<SSL_CTX> context,
                   std::vector<timespec> stamps);

  const TlsFiles files_;
  const std::string name_;  // in log lines
  std::shared_ptr<SSL_CTX> context_;
  std::vector<timespec> stamps_;  // the files' mtimes when loaded
  std::chrono::steady_clock::time_point next_check_;
};

// OpenSSL's reasons for its last failure ("no reason given" when it
// kept none), and clears its error queue.
std::string OpenSslErrors();

// TLS over `fd` (a connected, non-blocking socket) as its server; null
// when OpenSSL cannot make a session (out of memory).
std::unique_ptr<ByteStream> TlsStream(ScopedFd fd,
                                      std::shared_ptr<SSL_CTX> context);

}  // namespace tensorpager::http

#endif  // TENSORPAGER_SERVER_HTTP_TLS_STREAM_H_
