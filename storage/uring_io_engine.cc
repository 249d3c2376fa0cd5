#include "storage/uring_io_engine.h"

#include <algorithm>
#include <cerrno>
#include <string>
#include <utility>

#include "absl/container/fixed_array.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "storage/base/log.h"

namespace tensorpager::storage {
namespace {

// Resubmissions of one unit after EINTR/EAGAIN before giving up; the kernel
// retries those itself for regular files, so this is only a backstop.
constexpr uint32_t kMaxUnitRetries = 16;
// io_uring_enter calls in a row that fail transiently (EINTR, EAGAIN,
// EBUSY) before the ring counts as broken.
constexpr int kMaxTransientFailures = 1000;
// Rings are per concurrent call; beyond this many, calls wait for one.
constexpr uint32_t kMaxRings = 64;

bool IsTransient(int result) {
  return result == -EINTR || result == -EAGAIN || result == -EBUSY;
}

}  // namespace

struct UringIoEngine::Unit {
  IoRequest* request = nullptr;
  uint64_t offset = 0;
  std::byte* data = nullptr;
  uint32_t length = 0;
  uint32_t done = 0;  // bytes transferred so far
  uint32_t retries = 0;
  bool finished = false;
};

// A ring held for one call. Given back to the pool when the call ends, or
// dropped if it broke.
class UringIoEngine::RingLease {
 public:
  RingLease(UringIoEngine& engine, UringRing ring)
      : engine_(engine), ring_(std::move(ring)) {}
  ~RingLease() {
    if (broken_) {
      engine_.DropRing();
    } else {
      engine_.ReturnRing(std::move(ring_));
    }
  }
  RingLease(const RingLease&) = delete;
  RingLease& operator=(const RingLease&) = delete;

  io_uring* get() const { return ring_.get(); }
  void MarkBroken() { broken_ = true; }

 private:
  UringIoEngine& engine_;
  UringRing ring_;
  bool broken_ = false;
};

UringIoEngine::UringIoEngine(std::unique_ptr<DataFile> file,
                             UringRing first_ring,
                             const IoEngineOptions& options)
    : file_(std::move(file)),
      unit_bytes_(options.io_unit_bytes),
      ring_entries_(options.queue_depth),
      max_rings_(std::min(options.queue_depth, kMaxRings)),
      name_(file_->direct() ? "io_uring+direct" : "io_uring+buffered"),
      rings_(1),
      free_slots_(options.queue_depth) {
  idle_rings_.push_back(std::move(first_ring));
}

absl::StatusOr<UringRing> UringIoEngine::TakeRing() {
  std::unique_lock lock(pool_mu_);
  while (idle_rings_.empty()) {
    if (rings_ < max_rings_ && !ring_setup_failed_) {
      absl::StatusOr<UringRing> ring = UringRing::Create(ring_entries_);
      if (ring.ok()) {
        ++rings_;
        return ring;
      }
      if (rings_ == 0) return ring.status();
      // Typically a file descriptor or locked-memory limit: carry on with
      // the rings there are.
      ring_setup_failed_ = true;
      TP_LOG(WARNING) << "cannot set up another io_uring ring for "
                      << file_->path() << " (" << ring.status().message()
                      << "); at most " << rings_
                      << " I/O calls will run at once";
    }
    ring_returned_.wait(lock);
  }
  UringRing ring = std::move(idle_rings_.back());
  idle_rings_.pop_back();
  return ring;
}

void UringIoEngine::ReturnRing(UringRing ring) {
  {
    std::lock_guard lock(pool_mu_);
    idle_rings_.push_back(std::move(ring));
  }
  ring_returned_.notify_one();
}

void UringIoEngine::DropRing() {
  {
    std::lock_guard lock(pool_mu_);
    --rings_;
    ring_setup_failed_ = false;  // let a waiting call set up a fresh one
  }
  ring_returned_.notify_one();
}

uint32_t UringIoEngine::AcquireSlots(uint32_t wanted) {
  std::unique_lock lock(slot_mu_);
  if (free_slots_ == 0) {
    ++slot_waiters_;
    slot_freed_.wait(lock, [this] { return free_slots_ > 0; });
    --slot_waiters_;
  }
  const uint32_t taken = std::min(wanted, free_slots_);
  free_slots_ -= taken;
  return taken;
}

uint32_t UringIoEngine::TryAcquireSlots(uint32_t wanted) {
  std::lock_guard lock(slot_mu_);
  if (slot_waiters_ > 0) return 0;
  const uint32_t taken = std::min(wanted, free_slots_);
  free_slots_ -= taken;
  return taken;
}

void UringIoEngine::ReleaseSlots(uint32_t n) {
  bool waiters;
  {
    std::lock_guard lock(slot_mu_);
    free_slots_ += n;
    waiters = slot_waiters_ > 0;
  }
  if (waiters) slot_freed_.notify_all();
}

void UringIoEngine::Prep(io_uring* ring, Unit& unit) {
  // Never null: the ring has queue_depth entries, and a call never has
  // more than that many units prepared or in flight.
  io_uring_sqe* sqe = io_uring_get_sqe(ring);
  std::byte* at = unit.data + unit.done;
  const uint32_t left = unit.length - unit.done;
  const uint64_t offset = unit.offset + unit.done;
  if (unit.request->op == IoOp::kRead) {
    io_uring_prep_read(sqe, file_->fd(), at, left, offset);
  } else {
    io_uring_prep_write(sqe, file_->fd(), at, left, offset);
  }
  io_uring_sqe_set_data(sqe, &unit);
}

bool UringIoEngine::OnCompletion(io_uring* ring, Unit& unit, int result) {
  absl::Status& status = unit.request->status;
  const IoOp op = unit.request->op;
  if (result > 0) {
    unit.done += static_cast<uint32_t>(result);
    if (unit.done >= unit.length || !status.ok()) return true;
    Prep(ring, unit);  // a short transfer: queue the rest
    return false;
  }
  if (result == 0) {
    if (status.ok()) {
      status =
          ShortTransferStatus(op, file_->Describe(op, unit.offset, unit.length),
                              unit.done, file_->size());
    }
    return true;
  }
  if ((result == -EINTR || result == -EAGAIN) &&
      ++unit.retries <= kMaxUnitRetries && status.ok()) {
    Prep(ring, unit);
    return false;
  }
  if (status.ok()) {
    status = IoErrorStatus(-result, op,
                           file_->Describe(op, unit.offset, unit.length));
  }
  return true;
}

void UringIoEngine::Drain(io_uring* ring, uint32_t* in_flight) {
  bool reported = false;
  while (*in_flight > 0) {
    io_uring_cqe* cqe = nullptr;
    const int r = io_uring_wait_cqe(ring, &cqe);
    if (r < 0) {
      // Returning now would leave the kernel writing into the caller's
      // buffer, so keep waiting.
      if (!IsTransient(r) && !reported) {
        TP_LOG(ERROR) << "waiting for io_uring completions on " << file_->path()
                      << " fails: " << ErrnoText(-r) << "; still waiting";
        reported = true;
      }
      absl::SleepFor(absl::Milliseconds(1));
      continue;
    }
    io_uring_cqe_seen(ring, cqe);
    --*in_flight;
    ReleaseSlots(1);
  }
}

void UringIoEngine::TransferBatch(absl::Span<IoRequest> requests) {
  uint64_t count = 0;
  for (IoRequest& r : requests) {
    r.status = CheckIoRequest(r.offset, r.data.data(), r.data.size());
    if (r.status.ok()) count += (r.data.size() + unit_bytes_ - 1) / unit_bytes_;
  }
  if (count == 0) return;
  absl::FixedArray<Unit, 4> units(count);
  uint64_t k = 0;
  for (IoRequest& r : requests) {
    if (!r.status.ok()) continue;
    for (uint64_t start = 0; start < r.data.size(); start += unit_bytes_) {
      units[k++] = Unit{.request = &r,
                        .offset = r.offset + start,
                        .data = r.data.data() + start,
                        .length = static_cast<uint32_t>(
                            std::min(unit_bytes_, r.data.size() - start))};
    }
  }
  absl::StatusOr<UringRing> taken = TakeRing();
  if (!taken.ok()) {
    for (IoRequest& r : requests) {
      if (r.status.ok() && !r.data.empty()) r.status = taken.status();
    }
    return;
  }
  RingLease lease(*this, *std::move(taken));
  io_uring* ring = lease.get();

  uint64_t next = 0;       // first unit not yet prepared
  uint32_t in_flight = 0;  // units holding a slot: prepared or submitted
  int transient_failures = 0;
  while (true) {
    if (next < count && in_flight < ring_entries_) {
      const uint32_t wanted = static_cast<uint32_t>(
          std::min<uint64_t>(count - next, ring_entries_ - in_flight));
      const uint32_t got =
          in_flight == 0 ? AcquireSlots(wanted) : TryAcquireSlots(wanted);
      uint32_t used = 0;
      while (used < got && next < count) {
        Unit& unit = units[next++];
        // The rest of a request that failed is not worth moving.
        if (!unit.request->status.ok()) continue;
        Prep(ring, unit);
        ++used;
      }
      if (used < got) ReleaseSlots(got - used);
      in_flight += used;
    }
    if (in_flight == 0) {
      if (next < count) continue;
      break;
    }
    // One system call submits what is prepared and waits for a completion.
    const int r = io_uring_submit_and_wait(ring, 1);
    if (r < 0 &&
        (!IsTransient(r) || ++transient_failures > kMaxTransientFailures)) {
      const absl::Status broken = absl::InternalError(absl::StrCat(
          "io_uring_submit on ", file_->path(), " failed: ", ErrnoText(-r),
          "; if this persists, run the server with the thread I/O engine"));
      TP_LOG(ERROR) << broken.message();
      lease.MarkBroken();
      // Prepared entries the kernel did not take never complete; the ring
      // is dropped, so they are never submitted either.
      const uint32_t stranded = io_uring_sq_ready(ring);
      in_flight -= stranded;
      ReleaseSlots(stranded);
      Drain(ring, &in_flight);
      for (Unit& unit : units) {
        if (!unit.finished && unit.request->status.ok()) {
          unit.request->status = broken;
        }
      }
      break;
    }
    if (r >= 0) transient_failures = 0;
    unsigned head;
    unsigned seen = 0;
    uint32_t finished = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(ring, head, cqe) {
      ++seen;
      Unit& unit = *static_cast<Unit*>(io_uring_cqe_get_data(cqe));
      if (OnCompletion(ring, unit, cqe->res)) {
        unit.finished = true;
        ++finished;
      }
    }
    io_uring_cq_advance(ring, seen);
    if (finished > 0) {
      in_flight -= finished;
      ReleaseSlots(finished);
    }
  }

  file_->NoteWrites(requests);
}

absl::Status UringIoEngine::Sync() {
  return commit_.Sync([this] { return file_->Datasync(); });
}

absl::Status UringIoEngine::Reserve(uint64_t bytes) {
  return file_->Reserve(bytes);
}

absl::StatusOr<bool> UringIoEngine::Discard(uint64_t offset, uint64_t length) {
  return file_->PunchHole(offset, length);
}

}  // namespace tensorpager::storage
