#include "storage/thread_io_engine.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"

namespace tensorpager::storage {

// One unit of a batch: a piece of one request.
struct ThreadIoEngine::Unit {
  IoRequest* request = nullptr;
  uint64_t offset = 0;
  std::byte* data = nullptr;
  uint64_t length = 0;
};

// A batch of several units. Shared with the workers, which may still hold
// it (finding no unit left) after the caller returned; they never touch a
// unit then.
struct ThreadIoEngine::Job {
  explicit Job(std::vector<Unit> units) : units(std::move(units)) {}

  const std::vector<Unit> units;
  std::atomic<uint64_t> next_unit{0};
  std::mutex mu;
  std::condition_variable all_finished;
  uint64_t finished = 0;  // guarded by mu
  // The requests' statuses are written under mu too: a failure marks the
  // request so its remaining units are skipped.
};

ThreadIoEngine::ThreadIoEngine(std::unique_ptr<DataFile> file,
                               const IoEngineOptions& options)
    : file_(std::move(file)),
      unit_bytes_(options.io_unit_bytes),
      name_(file_->direct() ? "threads+direct" : "threads+buffered") {
  const uint32_t workers = options.queue_depth - 1;
  workers_.reserve(workers);
  for (uint32_t i = 0; i < workers; ++i) {
    workers_.emplace_back([this] { WorkerLoop(); });
  }
}

ThreadIoEngine::~ThreadIoEngine() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  work_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadIoEngine::WorkerLoop() {
  while (true) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock lock(mu_);
      work_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    Help(*job);
  }
}

absl::Status ThreadIoEngine::TransferUnit(IoOp op, uint64_t offset,
                                          std::byte* data,
                                          uint64_t length) const {
  uint64_t done = 0;
  while (done < length) {
    const off_t at = static_cast<off_t>(offset + done);
    const ssize_t n =
        op == IoOp::kRead
            ? ::pread(file_->fd(), data + done, length - done, at)
            : ::pwrite(file_->fd(), data + done, length - done, at);
    if (n > 0) {
      done += static_cast<uint64_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      return IoErrorStatus(errno, op, file_->Describe(op, offset, length));
    // A zero-byte transfer: the end of the file for reads; for writes the
    // kernel gives no reason, and retrying could spin forever.
    return ShortTransferStatus(op, file_->Describe(op, offset, length), done,
                               file_->size());
  }
  return absl::OkStatus();
}

void ThreadIoEngine::Help(Job& job) const {
  while (true) {
    const uint64_t i = job.next_unit.fetch_add(1, std::memory_order_relaxed);
    if (i >= job.units.size()) return;
    const Unit& unit = job.units[i];
    bool wanted;
    {
      std::lock_guard lock(job.mu);
      wanted = unit.request->status.ok();
    }
    absl::Status s;
    if (wanted) {
      s = TransferUnit(unit.request->op, unit.offset, unit.data, unit.length);
    }
    std::lock_guard lock(job.mu);
    if (!s.ok() && unit.request->status.ok()) unit.request->status = s;
    if (++job.finished == job.units.size()) job.all_finished.notify_one();
  }
}

void ThreadIoEngine::TransferBatch(absl::Span<IoRequest> requests) {
  std::vector<Unit> units;
  for (IoRequest& r : requests) {
    r.status = CheckIoRequest(r.offset, r.data.data(), r.data.size());
    if (!r.status.ok()) continue;
    for (uint64_t start = 0; start < r.data.size(); start += unit_bytes_) {
      units.push_back({&r, r.offset + start, r.data.data() + start,
                       std::min(unit_bytes_, r.data.size() - start)});
    }
  }
  if (units.size() == 1 || workers_.empty()) {
    for (const Unit& unit : units) {
      if (!unit.request->status.ok()) continue;
      unit.request->status =
          TransferUnit(unit.request->op, unit.offset, unit.data, unit.length);
    }
  } else if (!units.empty()) {
    auto job = std::make_shared<Job>(std::move(units));
    const uint64_t helpers =
        std::min<uint64_t>(job->units.size() - 1, workers_.size());
    {
      std::lock_guard lock(mu_);
      for (uint64_t i = 0; i < helpers; ++i) queue_.push_back(job);
    }
    for (uint64_t i = 0; i < helpers; ++i) work_.notify_one();
    Help(*job);
    std::unique_lock lock(job->mu);
    job->all_finished.wait(lock,
                           [&] { return job->finished == job->units.size(); });
  }
  file_->NoteWrites(requests);
}

absl::Status ThreadIoEngine::Sync() {
  return commit_.Sync([this] { return file_->Datasync(); });
}

absl::Status ThreadIoEngine::Reserve(uint64_t bytes) {
  return file_->Reserve(bytes);
}

absl::StatusOr<bool> ThreadIoEngine::Discard(uint64_t offset, uint64_t length) {
  return file_->PunchHole(offset, length);
}

}  // namespace tensorpager::storage
