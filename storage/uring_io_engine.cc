#include "storage/uring_io_engine.h"

#include <linux/time_types.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/fixed_array.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "storage/log.h"

namespace tensorpager::storage {
namespace {

// Resubmissions of one unit after EINTR/EAGAIN before giving up; the kernel
// retries those itself for regular files, so this is only a backstop.
constexpr uint32_t kMaxUnitRetries = 16;
// Attempts of io_uring_submit that make no progress before the ring is
// declared broken.
constexpr int kMaxIdleSubmits = 1000;
// The reaper wakes this often even without completions, so shutdown never
// depends on a completion arriving.
constexpr __kernel_timespec kReaperTick = {.tv_sec = 1, .tv_nsec = 0};

}  // namespace

// What one caller waits for. Lives on the caller's stack; the reaper stops
// touching it before `pending` reaches zero under done_mu_.
struct UringIoEngine::Request {
  std::condition_variable done;
  uint64_t pending = 0;  // units not finished, guarded by done_mu_
  absl::Status status;   // the first failure, guarded by done_mu_
  // Set on the first failure so the caller stops submitting units.
  std::atomic<bool> failed{false};
};

struct UringIoEngine::Unit {
  // The kernel hands a unit from the submitting thread to the reaper, which
  // race detectors cannot see; this release/acquire pair shows it to them.
  std::atomic<bool> published{false};
  Request* request = nullptr;
  IoOp op = IoOp::kRead;
  uint64_t offset = 0;
  std::byte* data = nullptr;
  uint32_t length = 0;
  uint32_t done = 0;  // bytes transferred so far
  uint32_t retries = 0;
};

UringIoEngine::UringIoEngine(std::unique_ptr<DataFile> file, UringRing ring,
                             const IoEngineOptions& options)
    : file_(std::move(file)),
      ring_(std::move(ring)),
      unit_bytes_(options.io_unit_bytes),
      name_(file_->direct() ? "io_uring+direct" : "io_uring+buffered"),
      free_slots_(options.queue_depth) {
  reaper_ = std::thread([this] { ReapLoop(); });
}

UringIoEngine::~UringIoEngine() {
  stopping_.store(true, std::memory_order_release);
  {
    // A NOP without a unit wakes the reaper at once; if the ring cannot
    // take it the reaper still notices `stopping_` within kReaperTick.
    std::lock_guard lock(sq_mu_);
    if (broken_.ok()) {
      if (io_uring_sqe* sqe = io_uring_get_sqe(ring_.get()); sqe != nullptr) {
        io_uring_prep_nop(sqe);
        io_uring_sqe_set_data(sqe, nullptr);
        uint32_t taken = 0;
        SubmitLocked(1, &taken).IgnoreError();
      }
    }
  }
  reaper_.join();
}

uint32_t UringIoEngine::AcquireSlots(uint32_t wanted) {
  std::unique_lock lock(slot_mu_);
  slot_freed_.wait(lock, [this] { return free_slots_ > 0; });
  const uint32_t taken = std::min(wanted, free_slots_);
  free_slots_ -= taken;
  return taken;
}

void UringIoEngine::ReleaseSlots(uint32_t n) {
  {
    std::lock_guard lock(slot_mu_);
    free_slots_ += n;
  }
  // Callers take several slots at once, so any waiter may be able to go.
  slot_freed_.notify_all();
}

void UringIoEngine::PrepLocked(Unit& unit) {
  // Never null: at most queue_depth units are in flight, the ring has that
  // many slots, and every prepared entry is submitted before sq_mu_ is
  // released.
  io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
  std::byte* at = unit.data + unit.done;
  const uint32_t left = unit.length - unit.done;
  const uint64_t offset = unit.offset + unit.done;
  if (unit.op == IoOp::kRead) {
    io_uring_prep_read(sqe, file_->fd(), at, left, offset);
  } else {
    io_uring_prep_write(sqe, file_->fd(), at, left, offset);
  }
  io_uring_sqe_set_data(sqe, &unit);
  // The last access before the kernel owns the unit.
  unit.published.store(true, std::memory_order_release);
}

absl::Status UringIoEngine::SubmitLocked(uint32_t count, uint32_t* taken) {
  *taken = 0;
  int idle = 0;
  while (*taken < count) {
    const int r = io_uring_submit(ring_.get());
    if (r > 0) {
      *taken += std::min<uint32_t>(static_cast<uint32_t>(r), count - *taken);
      idle = 0;
      continue;
    }
    // EAGAIN/EBUSY: the kernel is short of memory or completions; both
    // clear as requests finish.
    const bool transient = r == 0 || r == -EINTR || r == -EAGAIN || r == -EBUSY;
    if (transient && ++idle < kMaxIdleSubmits) {
      absl::SleepFor(absl::Microseconds(50));
      continue;
    }
    const std::string cause = r < 0 ? ErrnoText(-r) : "no progress";
    broken_ = absl::InternalError(
        absl::StrCat("the io_uring engine of ", file_->path(),
                     " stopped working "
                     "(io_uring_submit: ",
                     cause,
                     "); restart the server, or run it with "
                     "the thread I/O engine"));
    TP_LOG(ERROR) << broken_.message();
    return broken_;
  }
  return absl::OkStatus();
}

absl::Status UringIoEngine::Transfer(IoOp op, uint64_t offset, std::byte* data,
                                     uint64_t length) {
  if (absl::Status s = CheckIoRequest(offset, data, length); !s.ok()) return s;
  if (length == 0) return absl::OkStatus();
  const uint64_t count = (length + unit_bytes_ - 1) / unit_bytes_;
  Request request;
  request.pending = count;
  absl::FixedArray<Unit, 4> units(count);
  for (uint64_t i = 0; i < count; ++i) {
    Unit& u = units[i];
    const uint64_t start = i * unit_bytes_;
    u.request = &request;
    u.op = op;
    u.offset = offset + start;
    u.data = data + start;
    u.length = static_cast<uint32_t>(std::min(unit_bytes_, length - start));
  }

  uint64_t submitted = 0;
  absl::Status submit_error;
  while (submitted < count && !request.failed.load(std::memory_order_acquire)) {
    const uint32_t slots = AcquireSlots(static_cast<uint32_t>(
        std::min<uint64_t>(count - submitted, UINT32_MAX)));
    uint32_t taken = 0;
    {
      std::lock_guard lock(sq_mu_);
      submit_error = broken_;
      if (submit_error.ok()) {
        for (uint32_t i = 0; i < slots; ++i) {
          PrepLocked(units[submitted + i]);
        }
        submit_error = SubmitLocked(slots, &taken);
      }
    }
    if (taken < slots) ReleaseSlots(slots - taken);
    submitted += taken;
    if (!submit_error.ok()) break;
  }

  absl::Status result;
  {
    std::unique_lock lock(done_mu_);
    // Units never submitted will not complete.
    request.pending -= count - submitted;
    request.done.wait(lock, [&] { return request.pending == 0; });
    result = request.status.ok() ? submit_error : request.status;
  }
  if (op == IoOp::kWrite) {
    if (result.ok()) {
      file_->NoteWritten(offset + length);
    } else {
      file_->RefreshSize();
    }
  }
  return result;
}

void UringIoEngine::FinishUnit(Unit& unit, absl::Status status) {
  Request& request = *unit.request;
  std::lock_guard lock(done_mu_);
  if (!status.ok()) {
    request.failed.store(true, std::memory_order_release);
    if (request.status.ok()) request.status = std::move(status);
  }
  // Notified under done_mu_: the caller returns (destroying `unit` and
  // `request`, condition variable included) only after it is released.
  if (--request.pending == 0) request.done.notify_one();
}

bool UringIoEngine::OnCompletion(Unit& unit, int result, Finished* done) {
  unit.published.load(std::memory_order_acquire);
  done->unit = &unit;
  if (result > 0) {
    unit.done += static_cast<uint32_t>(result);
    if (unit.done >= unit.length) {
      done->status = absl::OkStatus();
      return true;
    }
  } else if (result == 0) {
    const std::string what = file_->Describe(unit.op, unit.offset, unit.length);
    done->status = unit.op == IoOp::kRead
                       ? absl::OutOfRangeError(absl::StrCat(
                             what, ": the file ends after ", unit.done,
                             " of them (file "
                             "size ",
                             file_->size(), ")"))
                       : absl::InternalError(absl::StrCat(
                             what, ": the kernel accepted no bytes after ",
                             unit.done, " of them"));
    return true;
  } else if ((result != -EINTR && result != -EAGAIN) ||
             ++unit.retries > kMaxUnitRetries) {
    done->status = IoErrorStatus(
        -result, unit.op, file_->Describe(unit.op, unit.offset, unit.length));
    return true;
  }
  // A short transfer or a transient error: resubmit what is left, in the
  // slot the unit already holds.
  std::lock_guard lock(sq_mu_);
  if (!broken_.ok()) {
    done->status = broken_;
    return true;
  }
  PrepLocked(unit);
  uint32_t taken = 0;
  done->status = SubmitLocked(1, &taken);
  return !done->status.ok();
}

void UringIoEngine::ReapLoop() {
  io_uring* ring = ring_.get();
  std::vector<Finished> finished;
  finished.reserve(ring->cq.ring_entries);
  bool reported = false;
  while (true) {
    io_uring_cqe* cqe = nullptr;
    __kernel_timespec tick = kReaperTick;
    const int r = io_uring_wait_cqe_timeout(ring, &cqe, &tick);
    if (r < 0) {
      if (stopping_.load(std::memory_order_acquire)) return;
      if (r != -ETIME && r != -EINTR) {
        if (!reported) {
          TP_LOG(ERROR) << "waiting for io_uring completions of "
                        << file_->path() << " failed: " << ErrnoText(-r);
          reported = true;
        }
        absl::SleepFor(absl::Milliseconds(1));
      }
      continue;
    }
    bool stop = false;
    unsigned head;
    unsigned seen = 0;
    io_uring_for_each_cqe(ring, head, cqe) {
      ++seen;
      void* data = io_uring_cqe_get_data(cqe);
      if (data == nullptr) {  // the destructor's wake-up NOP
        stop = true;
        continue;
      }
      Finished done;
      if (OnCompletion(*static_cast<Unit*>(data), cqe->res, &done)) {
        finished.push_back(std::move(done));
      }
    }
    io_uring_cq_advance(ring, seen);
    // Free the slots before waking callers, so a woken caller with more
    // units finds them.
    if (!finished.empty()) ReleaseSlots(static_cast<uint32_t>(finished.size()));
    for (Finished& f : finished) FinishUnit(*f.unit, std::move(f.status));
    finished.clear();
    if (stop) return;
  }
}

absl::Status UringIoEngine::Write(uint64_t offset,
                                  absl::Span<const std::byte> data) {
  // The kernel only reads the buffer of a write; Transfer takes one pointer
  // type for both directions.
  return Transfer(IoOp::kWrite, offset, const_cast<std::byte*>(data.data()),
                  data.size());
}

absl::Status UringIoEngine::Read(uint64_t offset, absl::Span<std::byte> data) {
  return Transfer(IoOp::kRead, offset, data.data(), data.size());
}

absl::Status UringIoEngine::Sync() {
  return commit_.Sync([this] { return file_->Datasync(); });
}

absl::Status UringIoEngine::Reserve(uint64_t bytes) {
  return file_->Reserve(bytes);
}

}  // namespace tensorpager::storage
