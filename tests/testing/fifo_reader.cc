#include "tests/testing/fifo_reader.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>

#include "absl/time/clock.h"

namespace tensorpager::testing {

FifoReader::FifoReader(const std::string& path, absl::Duration timeout) {
  // Non-blocking: a blocking open would wait here for the writer. O_CLOEXEC:
  // a child holding the read end would hide the writer's close.
  fd_ = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd_ < 0) return;  // Finish() returns "" and complete() false
  thread_ =
      std::thread([this, deadline = absl::Now() + timeout] { Run(deadline); });
}

FifoReader::~FifoReader() { Finish(); }

std::string FifoReader::Finish() {
  if (thread_.joinable()) thread_.join();
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  return data_;
}

void FifoReader::Run(absl::Time deadline) {
  char buffer[64 * 1024];
  while (absl::Now() < deadline) {
    // Linux reports POLLIN only with bytes to read, and POLLHUP only once a
    // writer has come and gone: before any writer, this just waits.
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0 || (p.revents & (POLLIN | POLLHUP)) == 0) {
      continue;
    }
    const ssize_t n = ::read(fd_, buffer, sizeof(buffer));
    if (n > 0) {
      data_.append(buffer, static_cast<size_t>(n));
    } else if (n == 0) {
      complete_ = true;  // every writer closed it
      return;
    } else if (errno != EAGAIN && errno != EINTR) {
      return;
    }
  }
}

}  // namespace tensorpager::testing
