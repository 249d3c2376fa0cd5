#include "server/http/tls_stream.h"

#include <openssl/err.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "storage/base/log.h"

namespace tensorpager::http {
namespace {

constexpr auto kRecheck = std::chrono::seconds(2);

std::vector<timespec> Stamps(const TlsFiles& files) {
  std::vector<timespec> stamps;
  for (const std::string* path : {&files.cert, &files.key, &files.client_ca}) {
    struct stat st {};
    if (!path->empty() && ::stat(path->c_str(), &st) != 0) st = {};
    stamps.push_back(st.st_mtim);
  }
  return stamps;
}

bool Same(const std::vector<timespec>& a, const std::vector<timespec>& b) {
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].tv_sec != b[i].tv_sec || a[i].tv_nsec != b[i].tv_nsec) {
      return false;
    }
  }
  return a.size() == b.size();
}

absl::StatusOr<std::shared_ptr<SSL_CTX>> MakeContext(const TlsFiles& files) {
  ERR_clear_error();
  std::shared_ptr<SSL_CTX> ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  if (ctx == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("making a TLS context: ", OpenSslErrors()));
  }
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  // Responses are written from a string that stays put, in parts.
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE |
                                  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  auto failed = [](const std::string& what, const std::string& path) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, " ", path, " does not load (", OpenSslErrors(),
                     "); it must be PEM and readable by the server"));
  };
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), files.cert.c_str()) != 1) {
    return failed("certificate", files.cert);
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), files.key.c_str(),
                                  SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx.get()) != 1) {
    return failed("private key (for the certificate)", files.key);
  }
  if (!files.client_ca.empty()) {
    STACK_OF(X509_NAME)* names =
        SSL_load_client_CA_file(files.client_ca.c_str());
    if (names == nullptr ||
        SSL_CTX_load_verify_locations(ctx.get(), files.client_ca.c_str(),
                                      nullptr) != 1) {
      if (names != nullptr) sk_X509_NAME_pop_free(names, X509_NAME_free);
      return failed("client CA", files.client_ca);
    }
    SSL_CTX_set_client_CA_list(ctx.get(), names);
    SSL_CTX_set_verify(
        ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  return ctx;
}

class TlsServerStream : public ByteStream {
 public:
  TlsServerStream(ScopedFd fd, std::shared_ptr<SSL_CTX> context, SSL* ssl)
      : fd_(std::move(fd)), context_(std::move(context)), ssl_(ssl) {}
  ~TlsServerStream() override { SSL_free(ssl_); }
  TlsServerStream(const TlsServerStream&) = delete;
  TlsServerStream& operator=(const TlsServerStream&) = delete;

  int fd() const override { return fd_.get(); }

  Result Read(char* buffer, size_t size) override {
    ERR_clear_error();
    const int n = SSL_read(ssl_, buffer, static_cast<int>(size));
    if (n > 0) return {Outcome::kBytes, static_cast<size_t>(n)};
    return Failed(n);
  }

  Result Write(const char* data, size_t size) override {
    ERR_clear_error();
    const int n = SSL_write(ssl_, data, static_cast<int>(size));
    if (n > 0) return {Outcome::kBytes, static_cast<size_t>(n)};
    return Failed(n);
  }

  void CloseWrite() override {
    // close_notify, then the socket's half-close; a peer that is gone
    // makes both fail, which changes nothing.
    ERR_clear_error();
    SSL_shutdown(ssl_);
    ERR_clear_error();
    ::shutdown(fd_.get(), SHUT_WR);
  }

 private:
  Result Failed(int n) {
    switch (SSL_get_error(ssl_, n)) {
      case SSL_ERROR_WANT_READ:
        return {Outcome::kWouldBlock, 0, POLLIN};
      case SSL_ERROR_WANT_WRITE:
        return {Outcome::kWouldBlock, 0, POLLOUT};
      case SSL_ERROR_ZERO_RETURN:
        return {Outcome::kEnd};
      default:
        // A failed handshake (no or a wrong client certificate, not TLS
        // at all) or a broken connection: nothing to answer.
        ERR_clear_error();
        return {Outcome::kError};
    }
  }

  ScopedFd fd_;
  const std::shared_ptr<SSL_CTX> context_;  // outlives ssl_
  SSL* const ssl_;
};

}  // namespace

std::string OpenSslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char text[256];
    ERR_error_string_n(e, text, sizeof(text));
    absl::StrAppend(&out, out.empty() ? "" : "; ", text);
  }
  return out.empty() ? "no reason given" : out;
}

absl::StatusOr<std::unique_ptr<TlsServerContext>> TlsServerContext::Load(
    TlsFiles files, std::string name) {
  std::vector<timespec> stamps = Stamps(files);
  absl::StatusOr<std::shared_ptr<SSL_CTX>> context = MakeContext(files);
  if (!context.ok()) return context.status();
  return std::unique_ptr<TlsServerContext>(
      new TlsServerContext(std::move(files), std::move(name),
                           *std::move(context), std::move(stamps)));
}

TlsServerContext::TlsServerContext(TlsFiles files, std::string name,
                                   std::shared_ptr<SSL_CTX> context,
                                   std::vector<timespec> stamps)
    : files_(std::move(files)),
      name_(std::move(name)),
      context_(std::move(context)),
      stamps_(std::move(stamps)),
      next_check_(std::chrono::steady_clock::now() + kRecheck) {}

std::shared_ptr<SSL_CTX> TlsServerContext::Current() {
  const auto now = std::chrono::steady_clock::now();
  if (now < next_check_) return context_;
  next_check_ = now + kRecheck;
  std::vector<timespec> stamps = Stamps(files_);
  if (Same(stamps, stamps_)) return context_;
  // Noted before loading: a file that does not load is reported once,
  // not every two seconds.
  stamps_ = std::move(stamps);
  absl::StatusOr<std::shared_ptr<SSL_CTX>> context = MakeContext(files_);
  if (!context.ok()) {
    TP_LOG(WARNING) << name_ << ": kept the previous TLS certificate: "
                    << context.status().message();
    return context_;
  }
  context_ = *std::move(context);
  TP_LOG(INFO) << name_ << ": loaded the renewed TLS certificate "
               << files_.cert;
  return context_;
}

std::unique_ptr<ByteStream> TlsStream(ScopedFd fd,
                                      std::shared_ptr<SSL_CTX> context) {
  SSL* ssl = SSL_new(context.get());
  if (ssl == nullptr) {
    ERR_clear_error();
    return nullptr;
  }
  if (SSL_set_fd(ssl, fd.get()) != 1) {
    SSL_free(ssl);
    ERR_clear_error();
    return nullptr;
  }
  SSL_set_accept_state(ssl);
  return std::make_unique<TlsServerStream>(std::move(fd), std::move(context),
                                           ssl);
}

}  // namespace tensorpager::http
