// Wraps an I/O engine and makes chosen requests fail the way a failing
// device does, so tests can prove that the block store never acknowledges
// what did not land and never returns wrong bytes.
#ifndef TENSORPAGER_STORAGE_TESTING_FAULTY_IO_ENGINE_H_
#define TENSORPAGER_STORAGE_TESTING_FAULTY_IO_ENGINE_H_

#include <deque>
#include <memory>
#include <mutex>
#include <string_view>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "storage/io_engine.h"

namespace tensorpager::storage::testing {

enum class Fault {
  // Nothing moves; the kernel's EIO (writes: INTERNAL, reads and syncs:
  // DATA_LOSS, as IoErrorStatus maps it).
  kEio,
  // The first half moves, then the device accepts no more (writes) or the
  // file ends (reads), with the real engines' messages.
  kShortTransfer,
  // ENOSPC: a full filesystem (writes and Reserve).
  kNoSpace,
  // A write whose first half lands and whose tail is lost, yet reports
  // success: a drive that acknowledged the write and lost its cache at a
  // power cut. Only a checksum can tell.
  kTornWrite,
};

class FaultyIoEngine final : public IoEngine {
 public:
  explicit FaultyIoEngine(std::unique_ptr<IoEngine> inner)
      : inner_(std::move(inner)) {}

  // The next `count` operations `op` (kRead, kWrite, kSync, kReserve)
  // fail as `fault`. Faults queue up in the order given.
  void FailNext(IoOp op, Fault fault, int count = 1);
  // Operations that have failed on purpose so far.
  int injected() const;

  std::string_view name() const override { return inner_->name(); }
  bool direct_io() const override { return inner_->direct_io(); }
  void TransferBatch(absl::Span<IoRequest> requests) override;
  absl::Status Sync() override;
  absl::Status Reserve(uint64_t bytes) override;
  absl::StatusOr<bool> Discard(uint64_t offset, uint64_t length) override {
    return inner_->Discard(offset, length);
  }
  uint64_t file_size() const override { return inner_->file_size(); }

 private:
  struct Planned {
    IoOp op;
    Fault fault;
  };
  // The fault planned for the next `op`, if any (consumes it).
  bool Take(IoOp op, Fault* fault);
  // Serves `r` with `fault` through the inner engine.
  void Inject(IoRequest& r, Fault fault);

  std::unique_ptr<IoEngine> inner_;
  mutable std::mutex mu_;
  std::deque<Planned> plan_;  // guarded by mu_
  int injected_ = 0;          // guarded by mu_
};

}  // namespace tensorpager::storage::testing

#endif  // TENSORPAGER_STORAGE_TESTING_FAULTY_IO_ENGINE_H_
