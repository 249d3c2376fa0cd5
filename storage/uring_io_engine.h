// The io_uring I/O engine. Each call (a batch of requests) runs on a ring
// of its own, taken from a pool: it submits its units, waits on that ring
// and reaps them itself, refilling the queue as they complete, as fio does. The
// kernel completes a request on the thread that submitted it, so a ring shared
// by several threads would need a thread hop (and a wake up) per completion;
// per-call rings need none. A request larger than io_unit_bytes is split into
// units that are in flight together; across all callers at most queue_depth
// units are in flight.
#ifndef TENSORPAGER_STORAGE_URING_IO_ENGINE_H_
#define TENSORPAGER_STORAGE_URING_IO_ENGINE_H_

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "storage/data_file.h"
#include "storage/group_commit.h"
#include "storage/io_engine.h"
#include "storage/io_error.h"
#include "storage/uring_ring.h"

namespace tensorpager::storage {

class UringIoEngine final : public IoEngine {
 public:
  // `options` must pass ValidateIoEngineOptions; `first_ring` (which proves
  // io_uring works here) must have queue_depth entries. More rings are set
  // up as concurrent callers need them.
  UringIoEngine(std::unique_ptr<DataFile> file, UringRing first_ring,
                const IoEngineOptions& options);
  ~UringIoEngine() override = default;

  std::string_view name() const override { return name_; }
  bool direct_io() const override { return file_->direct(); }
  void TransferBatch(absl::Span<IoRequest> requests) override;
  absl::Status Sync() override;
  absl::Status Reserve(uint64_t bytes) override;
  absl::StatusOr<bool> Discard(uint64_t offset, uint64_t length) override;
  uint64_t file_size() const override { return file_->size(); }

 private:
  struct Unit;
  class RingLease;

  // Waits on `ring` until every unit in flight on it has completed. For a
  // request that failed: the kernel must be done with the caller's buffer
  // before the call returns.
  void Drain(io_uring* ring, uint32_t* in_flight);
  // Applies one completion to its unit. Returns true when the unit is done
  // (its slot can go), false when its remainder was queued again.
  // A failure goes to the unit's request status.
  bool OnCompletion(io_uring* ring, Unit& unit, int result);
  void Prep(io_uring* ring, Unit& unit);

  // A ring from the pool, or a new one while fewer than max_rings_ exist;
  // waits while all are in use.
  absl::StatusOr<UringRing> TakeRing();
  void ReturnRing(UringRing ring);
  void DropRing();

  // Blocks until a slot is free, then takes up to `wanted`.
  uint32_t AcquireSlots(uint32_t wanted);
  // Takes up to `wanted` free slots without blocking; none while another
  // caller waits for its first, so a large request cannot starve it.
  uint32_t TryAcquireSlots(uint32_t wanted);
  void ReleaseSlots(uint32_t n);

  const std::unique_ptr<DataFile> file_;
  const uint64_t unit_bytes_;
  const uint32_t ring_entries_;
  const uint32_t max_rings_;
  const std::string name_;
  GroupCommit commit_;

  // std::mutex, not absl::Mutex: see GroupCommit.
  std::mutex pool_mu_;
  std::condition_variable ring_returned_;
  std::vector<UringRing> idle_rings_;  // guarded by pool_mu_
  uint32_t rings_ = 0;                 // alive, leased or idle; pool_mu_
  bool ring_setup_failed_ = false;     // pool_mu_

  std::mutex slot_mu_;
  std::condition_variable slot_freed_;
  uint32_t free_slots_;        // guarded by slot_mu_
  uint32_t slot_waiters_ = 0;  // guarded by slot_mu_
};

}  // namespace tensorpager::storage

#endif  // TENSORPAGER_STORAGE_URING_IO_ENGINE_H_
