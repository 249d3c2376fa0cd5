// Owns a file descriptor and closes it once.
#ifndef TENSORPAGER_SERVER_HTTP_SCOPED_FD_H_
#define TENSORPAGER_SERVER_HTTP_SCOPED_FD_H_

#include <unistd.h>

#include <utility>

namespace tensorpager::http {

class ScopedFd {
 public:
  ScopedFd() = default;
  explicit ScopedFd(int fd) : fd_(fd) {}
  ScopedFd(ScopedFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  ScopedFd& operator=(ScopedFd&& other) noexcept {
    if (this != &other) Reset(std::exchange(other.fd_, -1));
    return *this;
  }
  ~ScopedFd() { Reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

  void Reset(int fd = -1) {
    // close() errors are not actionable here: Linux releases the
    // descriptor even when it reports one.
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace tensorpager::http

#endif  // TENSORPAGER_SERVER_HTTP_SCOPED_FD_H_
