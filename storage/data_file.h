// The NVMe tier's data file: one descriptor, opened for direct I/O where the
// filesystem allows it, with its size, preallocation and durability. The I/O
// engines share it; they differ only in how they move bytes.
#ifndef TENSORPAGER_STORAGE_DATA_FILE_H_
#define TENSORPAGER_STORAGE_DATA_FILE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "storage/io_error.h"
#include "storage/io_request.h"

namespace tensorpager::storage {

class DataFile {
 public:
  // Opens `path` read-write, creating it when missing. With `direct_io`,
  // uses O_DIRECT unless the filesystem refuses it (tmpfs before Linux 6.6,
  // ramfs, some FUSE filesystems); then it logs one line and uses buffered
  // I/O. Anything but a regular file is FAILED_PRECONDITION.
  static absl::StatusOr<std::unique_ptr<DataFile>> Open(const std::string& path,
                                                        bool direct_io);
  ~DataFile();
  DataFile(const DataFile&) = delete;
  DataFile& operator=(const DataFile&) = delete;

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  bool direct() const { return direct_; }
  uint64_t size() const { return size_.load(std::memory_order_acquire); }

  // Records that bytes up to `end` were written (writes past the end grow
  // the file).
  void NoteWritten(uint64_t end);
  // Re-reads the size from the file, e.g. after a failed write that may
  // have grown it part of the way.
  void RefreshSize();
  // NoteWritten for each write of a finished batch that succeeded; then
  // RefreshSize if one failed.
  void NoteWrites(absl::Span<const IoRequest> requests);
  // Grows the file to at least `bytes` with fallocate (posix_fallocate where
  // the filesystem lacks it); never shrinks it. ENOSPC is RESOURCE_EXHAUSTED.
  absl::Status Reserve(uint64_t bytes);
  // fallocate(PUNCH_HOLE | KEEP_SIZE); false where the filesystem has no
  // holes (EOPNOTSUPP).
  absl::StatusOr<bool> PunchHole(uint64_t offset, uint64_t length);
  // fdatasync: makes every completed write durable.
  absl::Status Datasync();

  // "reading 4096 bytes at offset 8192 of /data/blocks.dat", for messages.
  std::string Describe(IoOp op, uint64_t offset, uint64_t length) const;

 private:
  DataFile(std::string path, int fd, bool direct, uint64_t size)
      : path_(std::move(path)), fd_(fd), direct_(direct), size_(size) {}
  // posix_fallocate on a buffered descriptor: glibc emulates it with
  // one-byte writes, which O_DIRECT refuses. Returns an errno or 0.
  int EmulatedFallocate(uint64_t offset, uint64_t length) const;

  const std::string path_;
  const int fd_;
  const bool direct_;
  std::atomic<uint64_t> size_;
  std::mutex reserve_mu_;  // serialises Reserve
};

}  // namespace tensorpager::storage

#endif  // TENSORPAGER_STORAGE_DATA_FILE_H_
