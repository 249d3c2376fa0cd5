#include "storage/base/output_file.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "absl/strings/str_cat.h"

namespace tensorpager::base {
namespace {

// While alive, a write to a pipe nobody reads fails with EPIPE in this
// thread instead of raising SIGPIPE, which would end the process (for
// tensorpagerd, because a --ready_file FIFO's reader left early).
class ScopedSigpipeBlock {
 public:
  ScopedSigpipeBlock() {
    sigemptyset(&sigpipe_);
    sigaddset(&sigpipe_, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    // One already pending is blocked already: nothing to do or undo.
    active_ = !sigismember(&pending, SIGPIPE) &&
              pthread_sigmask(SIG_BLOCK, &sigpipe_, &old_) == 0;
  }
  ~ScopedSigpipeBlock() {
    if (!active_) return;
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    if (sigismember(&pending, SIGPIPE)) {  // raised by our write: discard it
      const timespec now{};
      while (sigtimedwait(&sigpipe_, nullptr, &now) < 0 && errno == EINTR) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  ScopedSigpipeBlock(const ScopedSigpipeBlock&) = delete;
  ScopedSigpipeBlock& operator=(const ScopedSigpipeBlock&) = delete;

 private:
  sigset_t sigpipe_;
  sigset_t old_;
  bool active_ = false;
};

int OpenRetrying(const std::string& path, int flags, mode_t mode = 0) {
  while (true) {
    const int fd = ::open(path.c_str(), flags, mode);
    if (fd >= 0 || errno != EINTR) return fd;
  }
}

// Writes all of `data` and closes `fd`; 0 or the errno of the failure.
int WriteAllAndClose(int fd, absl::string_view data) {
  int err = 0;
  {
    ScopedSigpipeBlock no_sigpipe;
    while (!data.empty()) {
      const ssize_t n = ::write(fd, data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        err = errno;
        break;
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
  }
  if (::close(fd) != 0 && err == 0 && errno != EINTR) err = errno;
  return err;
}

absl::Status WriteError(const std::string& path, int err) {
  return absl::DataLossError(
      absl::StrCat("cannot write ", path, ": ", std::strerror(err)));
}

// The name holds the old bytes or the new, never a part.
absl::Status Replace(const std::string& path, absl::string_view data) {
  const std::string temp = absl::StrCat(path, ".tmp-", ::getpid());
  // O_EXCL: never write through whatever already has that name, such as a
  // symlink planted there. A leftover of a run killed before its rename
  // is removed once.
  constexpr int kFlags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC;
  int fd = OpenRetrying(temp, kFlags, 0666);
  if (fd < 0 && errno == EEXIST && ::unlink(temp.c_str()) == 0) {
    fd = OpenRetrying(temp, kFlags, 0666);
  }
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create ", temp, ": ", std::strerror(errno)));
  }
  if (const int err = WriteAllAndClose(fd, data); err != 0) {
    ::unlink(temp.c_str());
    return WriteError(temp, err);
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(temp.c_str());
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot rename ", temp, " to ", path, ": ", std::strerror(err)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status WriteOutputFile(const std::string& path, absl::string_view data) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || S_ISREG(st.st_mode)) {
    return Replace(path, data);
  }
  if (S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is a directory; name a file"));
  }
  // O_NOCTTY: a terminal named here must not become our controlling one.
  const int fd = OpenRetrying(path, O_WRONLY | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  // Replaced by a regular file since the stat: that one gets replaced.
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    ::close(fd);
    return Replace(path, data);
  }
  if (const int err = WriteAllAndClose(fd, data); err != 0) {
    return WriteError(path, err);
  }
  return absl::OkStatus();
}

}  // namespace tensorpager::base
