#include "tests/bench/sdk_bench_redis.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace tensorpager::bench {
namespace {

absl::Status Errno(absl::string_view what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(errno)));
}

absl::StatusOr<int> FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return Errno("socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    return Errno("bind");
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

absl::StatusOr<int> Dial(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    return Errno("connect to redis");
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

}  // namespace

absl::StatusOr<std::unique_ptr<RedisServer>> RedisServer::Start(
    const std::string& binary, const std::string& work_dir) {
  if (::access(binary.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(binary, " not found: apt-get install redis-server"));
  }
  absl::StatusOr<int> port = FreePort();
  if (!port.ok()) return port.status();
  std::unique_ptr<RedisServer> r(new RedisServer());
  r->port_ = *port;
  const std::string port_text = absl::StrCat(*port);
  const std::string log = work_dir + "/redis.log";
  std::vector<std::string> args = {
      binary, "--port",           port_text, "--bind", "127.0.0.1", "--save",
      "",     "--appendonly",     "no",      "--dir",  work_dir,    "--logfile",
      log,    "--protected-mode", "no"};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  r->pid_ = ::fork();
  if (r->pid_ < 0) return Errno("fork");
  if (r->pid_ == 0) {
    ::setpgid(0, 0);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline) {
    absl::StatusOr<std::unique_ptr<RespClient>> c = RespClient::Connect(*port);
    if (c.ok()) return r;
    int status;
    if (::waitpid(r->pid_, &status, WNOHANG) == r->pid_) {
      r->pid_ = -1;
      return absl::UnavailableError(
          absl::StrCat("redis-server exited at startup; see ", log));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return absl::DeadlineExceededError("redis-server did not start listening");
}

RedisServer::~RedisServer() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  for (int i = 0; i < 500; ++i) {
    if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
}

absl::StatusOr<std::unique_ptr<RespClient>> RespClient::Connect(int port) {
  absl::StatusOr<int> fd = Dial(port);
  if (!fd.ok()) return fd.status();
  std::unique_ptr<RespClient> c(new RespClient(*fd));
  c->buffer_.resize(64 << 10);
  return c;
}

RespClient::~RespClient() { ::close(fd_); }

absl::Status RespClient::SendAll(const struct iovec* iov_in, int count) {
  std::vector<struct iovec> iov(iov_in, iov_in + count);
  size_t first = 0;
  while (first < iov.size()) {
    const ssize_t n =
        ::writev(fd_, iov.data() + first, static_cast<int>(iov.size() - first));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("send to redis");
    }
    size_t left = static_cast<size_t>(n);
    while (first < iov.size() && left >= iov[first].iov_len) {
      left -= iov[first].iov_len;
      ++first;
    }
    if (left > 0) {
      iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + left;
      iov[first].iov_len -= left;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> RespClient::ReadLine() {
  for (;;) {
    const char* b = buffer_.data() + begin_;
    const char* e = buffer_.data() + end_;
    const char* cr = std::search(b, e, "\r\n", "\r\n" + 2);
    if (cr != e) {
      std::string line(b, cr);
      begin_ += line.size() + 2;
      return line;
    }
    if (begin_ > 0) {
      std::memmove(buffer_.data(), b, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (end_ == buffer_.size()) {
      return absl::DataLossError("redis reply line too long");
    }
    const ssize_t n = ::read(fd_, buffer_.data() + end_, buffer_.size() - end_);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return n == 0 ? absl::UnavailableError("redis closed the connection")
                    : Errno("read from redis");
    }
    end_ += n;
  }
}

absl::Status RespClient::ReadExactly(char* out, size_t n) {
  const size_t buffered = std::min(n, end_ - begin_);
  std::memcpy(out, buffer_.data() + begin_, buffered);
  begin_ += buffered;
  size_t got = buffered;
  while (got < n) {
    const ssize_t r = ::read(fd_, out + got, n - got);
    if (r <= 0) {
      if (r < 0 && errno == EINTR) continue;
      return r == 0 ? absl::UnavailableError("redis closed the connection")
                    : Errno("read from redis");
    }
    got += r;
  }
  return absl::OkStatus();
}

absl::Status RespClient::Set(absl::string_view key,
                             absl::Span<const char> value) {
  const std::string head =
      absl::StrCat("*3\r\n$3\r\nSET\r\n$", key.size(), "\r\n", key, "\r\n$",
                   value.size(), "\r\n");
  struct iovec iov[3] = {{const_cast<char*>(head.data()), head.size()},
                         {const_cast<char*>(value.data()), value.size()},
                         {const_cast<char*>("\r\n"), 2}};
  if (absl::Status s = SendAll(iov, 3); !s.ok()) return s;
  absl::StatusOr<std::string> reply = ReadLine();
  if (!reply.ok()) return reply.status();
  if (*reply != "+OK") {
    return absl::InternalError(absl::StrCat("redis SET answered ", *reply));
  }
  return absl::OkStatus();
}

absl::Status RespClient::Get(absl::string_view key, absl::Span<char> out) {
  const std::string req =
      absl::StrCat("*2\r\n$3\r\nGET\r\n$", key.size(), "\r\n", key, "\r\n");
  struct iovec iov[1] = {{const_cast<char*>(req.data()), req.size()}};
  if (absl::Status s = SendAll(iov, 1); !s.ok()) return s;
  absl::StatusOr<std::string> head = ReadLine();
  if (!head.ok()) return head.status();
  size_t len = 0;
  if (head->empty() || (*head)[0] != '$' ||
      !absl::SimpleAtoi(absl::string_view(*head).substr(1), &len)) {
    return absl::InternalError(absl::StrCat("redis GET answered ", *head));
  }
  if (len != out.size()) {
    return absl::InternalError(absl::StrCat("redis GET returned ", len,
                                            " bytes, expected ", out.size()));
  }
  if (absl::Status s = ReadExactly(out.data(), len); !s.ok()) return s;
  char crlf[2];
  return ReadExactly(crlf, 2);
}

}  // namespace tensorpager::bench
