#include "tests/testing/http_get.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/http/tls_stream.h"

namespace tensorpager::testing {

using ::tensorpager::http::OpenSslErrors;

namespace {

// A connected loopback socket that gives up reading after 10 s.
absl::StatusOr<int> ConnectLoopback(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return absl::UnavailableError(absl::StrCat("nothing listens on ", port));
  }
  return fd;
}

std::string Request(const std::string& path, const std::string& authorization) {
  return absl::StrCat(
      "GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\n",
      authorization.empty()
          ? ""
          : absl::StrCat("Authorization: ", authorization, "\r\n"),
      "\r\n");
}

absl::StatusOr<HttpResponse> ParseResponse(const std::string& raw) {
  const size_t head_end = raw.find("\r\n\r\n");
  if (raw.compare(0, 5, "HTTP/") != 0 || head_end == std::string::npos) {
    return absl::DataLossError("malformed HTTP response");
  }
  HttpResponse r;
  const size_t sp = raw.find(' ');
  if (!absl::SimpleAtoi(raw.substr(sp + 1, 3), &r.status)) {
    return absl::DataLossError("malformed HTTP status");
  }
  r.body = raw.substr(head_end + 4);
  return r;
}

}  // namespace

absl::StatusOr<HttpResponse> HttpGet(int port, const std::string& path,
                                     const std::string& authorization) {
  absl::StatusOr<int> fd = ConnectLoopback(port);
  if (!fd.ok()) return fd.status();
  const std::string request = Request(path, authorization);
  if (::write(*fd, request.data(), request.size()) !=
      static_cast<ssize_t>(request.size())) {
    ::close(*fd);
    return absl::UnavailableError("short write");
  }
  std::string raw;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(*fd, buf, sizeof(buf));
    if (n <= 0) break;
    raw.append(buf, static_cast<size_t>(n));
  }
  ::close(*fd);
  return ParseResponse(raw);
}

absl::StatusOr<HttpResponse> HttpsGet(int port, const std::string& path,
                                      const TlsClientFiles& tls) {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(
      SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  if (ctx == nullptr || SSL_CTX_load_verify_locations(
                            ctx.get(), tls.ca_file.c_str(), nullptr) != 1) {
    return absl::InternalError(
        absl::StrCat("CA ", tls.ca_file, ": ", OpenSslErrors()));
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  if (!tls.cert_file.empty() &&
      (SSL_CTX_use_certificate_chain_file(ctx.get(), tls.cert_file.c_str()) !=
           1 ||
       SSL_CTX_use_PrivateKey_file(ctx.get(), tls.key_file.c_str(),
                                   SSL_FILETYPE_PEM) != 1)) {
    return absl::InternalError(absl::StrCat(
        "client certificate ", tls.cert_file, ": ", OpenSslErrors()));
  }
  absl::StatusOr<int> fd = ConnectLoopback(port);
  if (!fd.ok()) return fd.status();
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), SSL_free);
  SSL_set_fd(ssl.get(), *fd);
  SSL_set_tlsext_host_name(ssl.get(), "localhost");
  SSL_set1_host(ssl.get(), "localhost");
  const std::string request = Request(path, "");
  std::string raw;
  // With TLS 1.3 a refused client certificate shows on the first read.
  if (SSL_connect(ssl.get()) == 1 &&
      SSL_write(ssl.get(), request.data(), static_cast<int>(request.size())) ==
          static_cast<int>(request.size())) {
    char buf[65536];
    for (;;) {
      const int n = SSL_read(ssl.get(), buf, sizeof(buf));
      if (n <= 0) break;
      raw.append(buf, static_cast<size_t>(n));
    }
  }
  const std::string errors = OpenSslErrors();
  ssl.reset();
  ::close(*fd);
  if (raw.empty()) {
    return absl::UnavailableError(
        absl::StrCat("TLS exchange failed: ", errors));
  }
  return ParseResponse(raw);
}

int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string UrlEncode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      char hex[4];
      std::snprintf(hex, sizeof(hex), "%%%02X", c);
      out += hex;
    }
  }
  return out;
}

}  // namespace tensorpager::testing
