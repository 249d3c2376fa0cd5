#include "server/pressure/rooted_fs.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace tensorpager::server {
namespace {

constexpr size_t kMaxFileBytes = 1 << 20;

// Closes the descriptor on every return path.
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() { ::close(fd_); }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;

 private:
  int fd_;
};

}  // namespace

RootedFs::RootedFs(std::filesystem::path root) : root_(std::move(root)) {}

std::filesystem::path RootedFs::Resolve(absl::string_view path) const {
  while (!path.empty() && path.front() == '/') path.remove_prefix(1);
  return root_ / std::filesystem::path(std::string(path));
}

bool RootedFs::Exists(absl::string_view path) const {
  std::error_code ec;
  return std::filesystem::exists(Resolve(path), ec);
}

absl::StatusOr<std::string> RootedFs::ReadFile(absl::string_view path) const {
  const std::string full = Resolve(path).string();
  const int fd = ::open(full.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("open ", full));
  FdCloser closer(fd);
  std::string contents;
  char buffer[4096];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, absl::StrCat("read ", full));
    }
    if (n == 0) break;
    contents.append(buffer, static_cast<size_t>(n));
    if (contents.size() > kMaxFileBytes) {
      return absl::OutOfRangeError(
          absl::StrCat(full, " is larger than ", kMaxFileBytes,
                       " bytes; not a kernel status file"));
    }
  }
  return contents;
}

absl::StatusOr<uint64_t> RootedFs::ReadUint64(absl::string_view path) const {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  return ParseUint64(*text, Resolve(path).string());
}

std::string JoinPath(absl::string_view base, absl::string_view tail) {
  while (!tail.empty() && tail.front() == '/') tail.remove_prefix(1);
  if (tail.empty()) return std::string(base);
  if (!base.empty() && base.back() == '/') return absl::StrCat(base, tail);
  return absl::StrCat(base, "/", tail);
}

absl::flat_hash_map<std::string, uint64_t> ParseCounters(
    absl::string_view text) {
  absl::flat_hash_map<std::string, uint64_t> counters;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (fields.size() < 2) continue;
    absl::string_view name = fields[0];
    if (name.back() == ':') name.remove_suffix(1);
    uint64_t value = 0;
    if (name.empty() || !absl::SimpleAtoi(fields[1], &value)) continue;
    if (fields.size() >= 3 && fields[2] == "kB") value *= 1024;
    counters.insert_or_assign(std::string(name), value);
  }
  return counters;
}

absl::StatusOr<uint64_t> ParseUint64(absl::string_view text,
                                     absl::string_view what) {
  uint64_t value = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &value)) {
    return absl::InternalError(absl::StrCat(
        what, ": expected an unsigned number, got \"",
        absl::CEscape(absl::StripAsciiWhitespace(text).substr(0, 64)), "\""));
  }
  return value;
}

}  // namespace tensorpager::server
