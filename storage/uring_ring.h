// An io_uring instance (liburing), set up or explained: where the kernel or
// a seccomp profile refuses io_uring, Create says why, so the caller can
// fall back to the thread engine with one log line.
#ifndef TENSORPAGER_STORAGE_URING_RING_H_
#define TENSORPAGER_STORAGE_URING_RING_H_

#include <liburing.h>

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"

namespace tensorpager::storage {

class UringRing {
 public:
  // A ring with at least `entries` submission slots and twice as many
  // completion slots. FAILED_PRECONDITION when io_uring is unavailable
  // (EPERM/ENOSYS: seccomp or an old kernel) or lacks IORING_OP_READ/WRITE
  // (before Linux 5.6).
  static absl::StatusOr<UringRing> Create(uint32_t entries);

  io_uring* get() const { return ring_.get(); }

 private:
  struct Exit {
    void operator()(io_uring* ring) const;
  };
  explicit UringRing(std::unique_ptr<io_uring, Exit> ring)
      : ring_(std::move(ring)) {}

  std::unique_ptr<io_uring, Exit> ring_;
};

}  // namespace tensorpager::storage

#endif  // TENSORPAGER_STORAGE_URING_RING_H_
