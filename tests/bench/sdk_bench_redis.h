// The reference side of sdk_bench: a redis-server the benchmark starts on a
// free loopback port, and a minimal RESP client whose SET sends the value
// straight from the caller's buffer (writev) and whose GET reads the value
// straight into the caller's buffer, so Redis is measured at its best.
#ifndef TENSORPAGER_TESTS_BENCH_SDK_BENCH_REDIS_H_
#define TENSORPAGER_TESTS_BENCH_SDK_BENCH_REDIS_H_

#include <sys/types.h>
#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace tensorpager::bench {

class RedisServer {
 public:
  // `binary`: redis-server. No persistence: --save "" --appendonly no.
  static absl::StatusOr<std::unique_ptr<RedisServer>> Start(
      const std::string& binary, const std::string& work_dir);
  ~RedisServer();  // SIGTERM, then SIGKILL

  int port() const { return port_; }

 private:
  RedisServer() = default;
  pid_t pid_ = -1;
  int port_ = 0;
};

class RespClient {
 public:
  static absl::StatusOr<std::unique_ptr<RespClient>> Connect(int port);
  ~RespClient();

  absl::Status Set(absl::string_view key, absl::Span<const char> value);
  // Reads the value into `out`, which must be exactly its size.
  absl::Status Get(absl::string_view key, absl::Span<char> out);

 private:
  explicit RespClient(int fd) : fd_(fd) {}
  absl::Status SendAll(const struct iovec* iov, int count);
  // The next CRLF-terminated line of the reply (without CRLF).
  absl::StatusOr<std::string> ReadLine();
  absl::Status ReadExactly(char* out, size_t n);

  int fd_;
  // Bytes received past what was consumed.
  std::vector<char> buffer_;
  size_t begin_ = 0;
  size_t end_ = 0;
};

}  // namespace tensorpager::bench

#endif  // TENSORPAGER_TESTS_BENCH_SDK_BENCH_REDIS_H_
