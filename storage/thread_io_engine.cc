#include "storage/thread_io_engine.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"

namespace tensorpager::storage {

// A multi-unit request. Shared with the workers, which may still hold it
// (finding no unit left) after the caller returned; they never touch
// `data` then.
struct ThreadIoEngine::Job {
  Job(IoOp op, uint64_t offset, std::byte* data, uint64_t length,
      uint64_t units)
      : op(op), offset(offset), data(data), length(length), units(units) {}

  const IoOp op;
  const uint64_t offset;
  std::byte* const data;
  const uint64_t length;
  const uint64_t units;
  std::atomic<uint64_t> next_unit{0};
  // Set on the first failure so the remaining units are skipped.
  std::atomic<bool> failed{false};
  std::mutex mu;
  std::condition_variable all_finished;
  uint64_t finished = 0;  // guarded by mu
  absl::Status status;    // the first failure, guarded by mu
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
    if (op == IoOp::kRead) {
      return absl::OutOfRangeError(absl::StrCat(
          file_->Describe(op, offset, length), ": the file ends after ", done,
          " of them (file size ", file_->size(), ")"));
    }
    return absl::InternalError(absl::StrCat(
        file_->Describe(op, offset, length),
        ": the kernel accepted no bytes after ", done, " of them"));
  }
  return absl::OkStatus();
}

void ThreadIoEngine::Help(Job& job) const {
  while (true) {
    const uint64_t unit = job.next_unit.fetch_add(1, std::memory_order_relaxed);
    if (unit >= job.units) return;
    absl::Status s;
    if (!job.failed.load(std::memory_order_relaxed)) {
      const uint64_t start = unit * unit_bytes_;
      s = TransferUnit(job.op, job.offset + start, job.data + start,
                       std::min(unit_bytes_, job.length - start));
    }
    std::lock_guard lock(job.mu);
    if (!s.ok()) {
      job.failed.store(true, std::memory_order_relaxed);
      if (job.status.ok()) job.status = std::move(s);
    }
    if (++job.finished == job.units) job.all_finished.notify_one();
  }
}

absl::Status ThreadIoEngine::Transfer(IoOp op, uint64_t offset, std::byte* data,
                                      uint64_t length) {
  if (absl::Status s = CheckIoRequest(offset, data, length); !s.ok()) return s;
  if (length == 0) return absl::OkStatus();
  const uint64_t units = (length + unit_bytes_ - 1) / unit_bytes_;
  absl::Status result;
  if (units == 1 || workers_.empty()) {
    for (uint64_t start = 0; start < length && result.ok();
         start += unit_bytes_) {
      result = TransferUnit(op, offset + start, data + start,
                            std::min(unit_bytes_, length - start));
    }
  } else {
    auto job = std::make_shared<Job>(op, offset, data, length, units);
    const uint64_t helpers = std::min<uint64_t>(units - 1, workers_.size());
    {
      std::lock_guard lock(mu_);
      for (uint64_t i = 0; i < helpers; ++i) queue_.push_back(job);
    }
    for (uint64_t i = 0; i < helpers; ++i) work_.notify_one();
    Help(*job);
    std::unique_lock lock(job->mu);
    job->all_finished.wait(lock, [&] { return job->finished == job->units; });
    result = job->status;
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

absl::Status ThreadIoEngine::Write(uint64_t offset,
                                   absl::Span<const std::byte> data) {
  // pwrite only reads the buffer; Transfer takes one pointer type for both
  // directions.
  return Transfer(IoOp::kWrite, offset, const_cast<std::byte*>(data.data()),
                  data.size());
}

absl::Status ThreadIoEngine::Read(uint64_t offset, absl::Span<std::byte> data) {
  return Transfer(IoOp::kRead, offset, data.data(), data.size());
}

absl::Status ThreadIoEngine::Sync() {
  return commit_.Sync([this] { return file_->Datasync(); });
}

absl::Status ThreadIoEngine::Reserve(uint64_t bytes) {
  return file_->Reserve(bytes);
}

}  // namespace tensorpager::storage
