#include "storage/data_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "storage/base/log.h"

namespace tensorpager::storage {
namespace {

constexpr uint64_t kMaxFileBytes = std::numeric_limits<off_t>::max();

// open(2) retried on EINTR; returns the descriptor or -errno. A created
// file holds block bytes: the server's user alone may read it.
int OpenRetrying(const std::string& path, int flags) {
  while (true) {
    const int fd = ::open(path.c_str(), flags, 0600);
    if (fd >= 0) return fd;
    if (errno != EINTR) return -errno;
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<DataFile>> DataFile::Open(
    const std::string& path, bool direct_io) {
  if (path.empty()) {
    return absl::InvalidArgumentError("the data file path is empty");
  }
  constexpr int kFlags = O_RDWR | O_CREAT | O_CLOEXEC;
  int fd = -EINVAL;
  bool direct = false;
  if (direct_io) {
    fd = OpenRetrying(path, kFlags | O_DIRECT);
    if (fd >= 0) {
      direct = true;
    } else if (fd != -EINVAL) {
      return IoErrorStatus(-fd, IoOp::kOpen, absl::StrCat("opening ", path));
    } else {
      TP_LOG(WARNING) << "the filesystem of " << path
                      << " refuses O_DIRECT; using buffered I/O (page cache) "
                         "for the data file";
    }
  }
  if (fd < 0) {
    fd = OpenRetrying(path, kFlags);
    if (fd < 0) {
      return IoErrorStatus(-fd, IoOp::kOpen, absl::StrCat("opening ", path));
    }
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return IoErrorStatus(err, IoOp::kOpen, absl::StrCat("inspecting ", path));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat("the data file ", path,
                     " is not a regular file; point the data "
                     "directory elsewhere"));
  }
  return std::unique_ptr<DataFile>(
      new DataFile(path, fd, direct, static_cast<uint64_t>(st.st_size)));
}

DataFile::~DataFile() { ::close(fd_); }

void DataFile::NoteWritten(uint64_t end) {
  uint64_t current = size_.load(std::memory_order_relaxed);
  while (current < end && !size_.compare_exchange_weak(
                              current, end, std::memory_order_acq_rel)) {
  }
}

void DataFile::NoteWrites(absl::Span<const IoRequest> requests) {
  bool failed = false;
  for (const IoRequest& r : requests) {
    if (r.op != IoOp::kWrite) continue;
    if (r.status.ok()) {
      NoteWritten(r.offset + r.data.size());
    } else {
      failed = true;
    }
  }
  if (failed) RefreshSize();
}

void DataFile::RefreshSize() {
  struct stat st;
  if (::fstat(fd_, &st) == 0) NoteWritten(static_cast<uint64_t>(st.st_size));
}

int DataFile::EmulatedFallocate(uint64_t offset, uint64_t length) const {
  int fd = fd_;
  if (direct_) {
    fd = OpenRetrying(path_, O_RDWR | O_CLOEXEC);
    if (fd < 0) return -fd;
  }
  int err;
  do {
    err = ::posix_fallocate(fd, static_cast<off_t>(offset),
                            static_cast<off_t>(length));
  } while (err == EINTR);
  if (fd != fd_) ::close(fd);
  return err;
}

absl::Status DataFile::Reserve(uint64_t bytes) {
  std::lock_guard lock(reserve_mu_);
  const uint64_t current = size();
  if (bytes <= current) return absl::OkStatus();
  if (bytes > kMaxFileBytes) {
    return absl::OutOfRangeError(absl::StrCat("cannot grow ", path_, " to ",
                                              bytes,
                                              " bytes: beyond the largest "
                                              "file offset"));
  }
  const uint64_t length = bytes - current;
  int err = 0;
  while (::fallocate(fd_, 0, static_cast<off_t>(current),
                     static_cast<off_t>(length)) != 0) {
    err = errno;
    if (err != EINTR) break;
    err = 0;
  }
  if (err == EOPNOTSUPP || err == ENOSYS)
    err = EmulatedFallocate(current, length);
  if (err != 0) {
    // A failed fallocate may still have grown the file part of the way.
    RefreshSize();
    return IoErrorStatus(err, IoOp::kReserve,
                         absl::StrCat("growing ", path_, " from ", current,
                                      " to ", bytes, " bytes"));
  }
  NoteWritten(bytes);
  return absl::OkStatus();
}

absl::StatusOr<bool> DataFile::PunchHole(uint64_t offset, uint64_t length) {
  while (::fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                     static_cast<off_t>(offset),
                     static_cast<off_t>(length)) != 0) {
    if (errno == EINTR) continue;
    if (errno == EOPNOTSUPP || errno == ENOSYS) return false;
    return IoErrorStatus(
        errno, IoOp::kReserve,
        absl::StrCat("punching a hole of ", length, " bytes at offset ", offset,
                     " of ", path_));
  }
  return true;
}

absl::Status DataFile::Datasync() {
  while (::fdatasync(fd_) != 0) {
    if (errno != EINTR) {
      return IoErrorStatus(errno, IoOp::kSync, absl::StrCat("syncing ", path_));
    }
  }
  return absl::OkStatus();
}

std::string DataFile::Describe(IoOp op, uint64_t offset,
                               uint64_t length) const {
  const char* verb = op == IoOp::kRead ? "reading " : "writing ";
  return absl::StrCat(verb, length, " bytes at offset ", offset, " of ", path_);
}

}  // namespace tensorpager::storage
