// The I/O engine abstraction of the NVMe tier: one data file, positional
// reads and writes, durable syncs. Engines: io_uring (O_DIRECT, async) and a
// pread/pwrite thread engine as the fallback. Tests can substitute engines
// that fail on demand.
#ifndef TENSORPAGER_STORAGE_IO_ENGINE_H_
#define TENSORPAGER_STORAGE_IO_ENGINE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "storage/io_request.h"

namespace tensorpager::storage {

enum class IoEngineKind { kAuto, kIoUring, kThreads };

struct IoEngineOptions {
  std::string path;  // the data file; created when missing
  IoEngineKind kind = IoEngineKind::kAuto;
  // Unit a large request is split into; the units of one request are in
  // flight together.
  uint64_t io_unit_bytes = 4ull << 20;
  uint32_t queue_depth = 8;
  // Try O_DIRECT; engines fall back to buffered I/O (and say so) where the
  // filesystem refuses it.
  bool direct_io = true;
};

class IoEngine {
 public:
  virtual ~IoEngine() = default;

  // "io_uring" or "threads", with "+direct" or "+buffered".
  virtual std::string_view name() const = 0;
  virtual bool direct_io() const = 0;

  // Transfers every request and sets each one's status. Offsets and
  // lengths are multiples of base::kIoAlignment and buffers are aligned to it
  // (see base::AlignedBuffer); a short or failed transfer is an error status.
  // Up to queue_depth units of the whole batch are in flight, refilled as units
  // complete, so many small blocks move without a thread or a wake-up each
  // (io_uring: one system call submits and reaps several). Thread-safe:
  // concurrent calls are in flight together.
  virtual void TransferBatch(absl::Span<IoRequest> requests) = 0;
  // A batch of one request.
  absl::Status Write(uint64_t offset, absl::Span<const std::byte> data);
  absl::Status Read(uint64_t offset, absl::Span<std::byte> data);
  // Makes every write that completed before the call durable. Concurrent
  // callers may share one fdatasync (group commit).
  virtual absl::Status Sync() = 0;
  // Grows the file to at least `bytes` (preallocated where the filesystem
  // allows); never shrinks it. ENOSPC is RESOURCE_EXHAUSTED.
  virtual absl::Status Reserve(uint64_t bytes) = 0;
  // Gives [offset, +length) back to the filesystem (a hole: reads as
  // zeros, and the drive may trim it), so freed blocks' bytes do not stay
  // on the drive. False (and nothing done) where the filesystem has no
  // holes.
  virtual absl::StatusOr<bool> Discard(uint64_t offset, uint64_t length) = 0;
  virtual uint64_t file_size() const = 0;
};

// Opens the engine `options.kind` asks for. kAuto tries io_uring and falls
// back to threads, logging one line that says why.
absl::StatusOr<std::unique_ptr<IoEngine>> OpenIoEngine(
    const IoEngineOptions& options);

bool ParseIoEngineKind(std::string_view text, IoEngineKind* out);
// "auto", "io_uring" or "threads": what ParseIoEngineKind accepts.
std::string_view IoEngineKindName(IoEngineKind kind);

// INVALID_ARGUMENT unless `options` can open an engine: a path, an
// io_unit_bytes that is a multiple of base::kIoAlignment up to 1 GiB, and a
// queue_depth of 1 to 4096.
absl::Status ValidateIoEngineOptions(const IoEngineOptions& options);

// INVALID_ARGUMENT unless offset, length and the buffer address are
// multiples of base::kIoAlignment (and offset + length fits a file offset). For
// engines, including test doubles, to reject what the real ones reject.
absl::Status CheckIoRequest(uint64_t offset, const void* data, uint64_t length);

}  // namespace tensorpager::storage

#endif  // TENSORPAGER_STORAGE_IO_ENGINE_H_
