#include "storage/uring_ring.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "storage/io_error.h"

namespace tensorpager::storage {

void UringRing::Exit::operator()(io_uring* ring) const {
  io_uring_queue_exit(ring);
  std::default_delete<io_uring>()(ring);
}

absl::StatusOr<UringRing> UringRing::Create(uint32_t entries) {
  auto raw = std::make_unique<io_uring>();
  if (const int r = io_uring_queue_init(entries, raw.get(), 0); r < 0) {
    return IoErrorStatus(
        -r, IoOp::kSetup,
        absl::StrCat("io_uring is unavailable: io_uring_queue_init(", entries,
                     ")"));
  }
  UringRing ring(std::unique_ptr<io_uring, Exit>(raw.release()));
  const std::unique_ptr<io_uring_probe, decltype(&io_uring_free_probe)> probe(
      io_uring_get_probe_ring(ring.get()), &io_uring_free_probe);
  if (probe == nullptr) {
    return absl::FailedPreconditionError(
        "io_uring is unavailable: the kernel refused to list its operations");
  }
  if (!io_uring_opcode_supported(probe.get(), IORING_OP_READ) ||
      !io_uring_opcode_supported(probe.get(), IORING_OP_WRITE)) {
    return absl::FailedPreconditionError(
        "io_uring lacks IORING_OP_READ/WRITE (needs Linux 5.6 or newer); use "
        "the thread engine");
  }
  return ring;
}

}  // namespace tensorpager::storage
