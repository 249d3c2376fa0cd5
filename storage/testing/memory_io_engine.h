// An I/O engine over a data file held in memory, for tests of the block
// store that need no real disk: the MemoryFile outlives the engines opened
// over it, so a test can "restart" the store over the same bytes, and can
// damage or inspect them in between.
#ifndef TENSORPAGER_STORAGE_TESTING_MEMORY_IO_ENGINE_H_
#define TENSORPAGER_STORAGE_TESTING_MEMORY_IO_ENGINE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "storage/io_engine.h"

namespace tensorpager::storage::testing {

class MemoryFile {
 public:
  uint64_t size() const;
  // Grows the file, zero-filled; never shrinks it.
  void Grow(uint64_t bytes);
  // OUT_OF_RANGE past the end, as the real engines report a short read.
  absl::Status ReadAt(uint64_t offset, absl::Span<std::byte> out) const;
  // Extends the file when writing past its end, as pwrite does.
  void WriteAt(uint64_t offset, absl::Span<const std::byte> data);
  // Zeroes [offset, +length) within the file, as a punched hole reads.
  void Zero(uint64_t offset, uint64_t length);
  // Inverts `length` bytes at `offset` (within the file): a damaged sector.
  void Damage(uint64_t offset, uint64_t length);

 private:
  mutable std::mutex mu_;
  std::vector<std::byte> bytes_;
};

class MemoryIoEngine final : public IoEngine {
 public:
  explicit MemoryIoEngine(std::shared_ptr<MemoryFile> file)
      : file_(std::move(file)) {}

  std::string_view name() const override { return "memory"; }
  bool direct_io() const override { return true; }
  // Checks each request as the real engines do (alignment), then moves it.
  void TransferBatch(absl::Span<IoRequest> requests) override;
  absl::Status Sync() override { return absl::OkStatus(); }
  absl::Status Reserve(uint64_t bytes) override;
  absl::StatusOr<bool> Discard(uint64_t offset, uint64_t length) override;
  uint64_t file_size() const override { return file_->size(); }

 private:
  std::shared_ptr<MemoryFile> file_;
};

}  // namespace tensorpager::storage::testing

#endif  // TENSORPAGER_STORAGE_TESTING_MEMORY_IO_ENGINE_H_
