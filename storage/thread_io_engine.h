// The fallback I/O engine: pread/pwrite on the data file. The requests of
// a batch are split into units of at most io_unit_bytes that the calling
// thread and a pool of queue_depth - 1 workers transfer together, so one
// large swap or a batch of small ones keeps several device queues busy, as
// it does with io_uring.
#ifndef TENSORPAGER_STORAGE_THREAD_IO_ENGINE_H_
#define TENSORPAGER_STORAGE_THREAD_IO_ENGINE_H_

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "storage/data_file.h"
#include "storage/group_commit.h"
#include "storage/io_engine.h"
#include "storage/io_error.h"

namespace tensorpager::storage {

class ThreadIoEngine final : public IoEngine {
 public:
  // `options` must pass ValidateIoEngineOptions.
  ThreadIoEngine(std::unique_ptr<DataFile> file,
                 const IoEngineOptions& options);
  ~ThreadIoEngine() override;

  std::string_view name() const override { return name_; }
  bool direct_io() const override { return file_->direct(); }
  void TransferBatch(absl::Span<IoRequest> requests) override;
  absl::Status Sync() override;
  absl::Status Reserve(uint64_t bytes) override;
  absl::StatusOr<bool> Discard(uint64_t offset, uint64_t length) override;
  uint64_t file_size() const override { return file_->size(); }

 private:
  struct Unit;
  struct Job;

  // One unit, looping over short transfers and EINTR.
  absl::Status TransferUnit(IoOp op, uint64_t offset, std::byte* data,
                            uint64_t length) const;
  // Transfers units of `job` until none is left unclaimed.
  void Help(Job& job) const;
  void WorkerLoop();

  const std::unique_ptr<DataFile> file_;
  const uint64_t unit_bytes_;
  const std::string name_;
  GroupCommit commit_;

  // std::mutex, not absl::Mutex: see GroupCommit.
  std::mutex mu_;
  std::condition_variable work_;
  // Guarded by mu_. One entry per unit a worker may help with; entries of
  // finished jobs are found empty and dropped.
  std::deque<std::shared_ptr<Job>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace tensorpager::storage

#endif  // TENSORPAGER_STORAGE_THREAD_IO_ENGINE_H_
