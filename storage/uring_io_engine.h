// The io_uring I/O engine: one ring shared by every calling thread.
// Callers submit under a mutex and sleep; a reaper thread drains the
// completion queue, resubmits short transfers and wakes the caller whose
// request finished. A request larger than io_unit_bytes is split into units
// that are in flight together, at most queue_depth units across all callers.
#ifndef TENSORPAGER_STORAGE_URING_IO_ENGINE_H_
#define TENSORPAGER_STORAGE_URING_IO_ENGINE_H_

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "storage/data_file.h"
#include "storage/group_commit.h"
#include "storage/io_engine.h"
#include "storage/io_error.h"
#include "storage/uring_ring.h"

namespace tensorpager::storage {

class UringIoEngine final : public IoEngine {
 public:
  // `options` must pass ValidateIoEngineOptions; `ring` must have
  // queue_depth submission slots.
  UringIoEngine(std::unique_ptr<DataFile> file, UringRing ring,
                const IoEngineOptions& options);
  ~UringIoEngine() override;

  std::string_view name() const override { return name_; }
  bool direct_io() const override { return file_->direct(); }
  absl::Status Write(uint64_t offset,
                     absl::Span<const std::byte> data) override;
  absl::Status Read(uint64_t offset, absl::Span<std::byte> data) override;
  absl::Status Sync() override;
  absl::Status Reserve(uint64_t bytes) override;
  uint64_t file_size() const override { return file_->size(); }

 private:
  struct Request;
  struct Unit;
  // A completion handled by the reaper whose unit is done.
  struct Finished {
    Unit* unit;
    absl::Status status;
  };

  absl::Status Transfer(IoOp op, uint64_t offset, std::byte* data,
                        uint64_t length);
  // Blocks until a unit slot is free, then takes up to `wanted`.
  uint32_t AcquireSlots(uint32_t wanted);
  void ReleaseSlots(uint32_t n);
  // The *Locked functions need sq_mu_ held.
  void PrepLocked(Unit& unit);
  // Submits the `count` prepared entries; `*taken` is how many the kernel
  // accepted. On failure the ring is marked broken: its unaccepted entries
  // are never submitted, and every later request fails.
  absl::Status SubmitLocked(uint32_t count, uint32_t* taken);
  void ReapLoop();
  // Handles one completion; true (with `*done` filled) when the unit is
  // done, false when its remainder was resubmitted.
  bool OnCompletion(Unit& unit, int result, Finished* done);
  void FinishUnit(Unit& unit, absl::Status status);

  const std::unique_ptr<DataFile> file_;
  const UringRing ring_;
  const uint64_t unit_bytes_;
  const std::string name_;
  GroupCommit commit_;

  // std::mutex, not absl::Mutex: see GroupCommit.
  std::mutex sq_mu_;     // the submission side of the ring
  absl::Status broken_;  // guarded by sq_mu_

  std::mutex slot_mu_;
  std::condition_variable slot_freed_;
  uint32_t free_slots_;  // guarded by slot_mu_

  // Guards every Request's completion state.
  std::mutex done_mu_;

  std::atomic<bool> stopping_{false};
  std::thread reaper_;
};

}  // namespace tensorpager::storage

#endif  // TENSORPAGER_STORAGE_URING_IO_ENGINE_H_
