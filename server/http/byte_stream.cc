#include "server/http/byte_stream.h"

#include <sys/socket.h>

#include <cerrno>

namespace tensorpager::http {
namespace {

class SocketStream : public ByteStream {
 public:
  explicit SocketStream(ScopedFd fd) : fd_(std::move(fd)) {}

  int fd() const override { return fd_.get(); }

  Result Read(char* buffer, size_t size) override {
    for (;;) {
      const ssize_t n = ::recv(fd_.get(), buffer, size, 0);
      if (n > 0) return {Outcome::kBytes, static_cast<size_t>(n)};
      if (n == 0) return {Outcome::kEnd};
      if (errno == EINTR) continue;
      return Blocked(POLLIN);
    }
  }

  Result Write(const char* data, size_t size) override {
    for (;;) {
      const ssize_t n = ::send(fd_.get(), data, size, MSG_NOSIGNAL);
      if (n >= 0) return {Outcome::kBytes, static_cast<size_t>(n)};
      if (errno == EINTR) continue;
      return Blocked(POLLOUT);
    }
  }

  void CloseWrite() override { ::shutdown(fd_.get(), SHUT_WR); }

 private:
  static Result Blocked(short event) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return {Outcome::kWouldBlock, 0, event};
    }
    return {Outcome::kError};
  }

  ScopedFd fd_;
};

}  // namespace

std::unique_ptr<ByteStream> PlainStream(ScopedFd fd) {
  return std::make_unique<SocketStream>(std::move(fd));
}

}  // namespace tensorpager::http
