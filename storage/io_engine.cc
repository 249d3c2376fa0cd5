#include "storage/io_engine.h"

#include <cstdint>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "storage/base/aligned_buffer.h"
#include "storage/base/log.h"
#include "storage/data_file.h"
#include "storage/thread_io_engine.h"
#include "storage/uring_io_engine.h"
#include "storage/uring_ring.h"

namespace tensorpager::storage {
namespace {

constexpr uint64_t kMaxIoUnitBytes = 1ull << 30;
constexpr uint32_t kMaxQueueDepth = 4096;
constexpr uint64_t kMaxFileOffset = std::numeric_limits<int64_t>::max();

}  // namespace

bool ParseIoEngineKind(std::string_view text, IoEngineKind* out) {
  for (IoEngineKind kind :
       {IoEngineKind::kAuto, IoEngineKind::kIoUring, IoEngineKind::kThreads}) {
    if (text == IoEngineKindName(kind)) {
      *out = kind;
      return true;
    }
  }
  return false;
}

std::string_view IoEngineKindName(IoEngineKind kind) {
  switch (kind) {
    case IoEngineKind::kAuto:
      return "auto";
    case IoEngineKind::kIoUring:
      return "io_uring";
    case IoEngineKind::kThreads:
      return "threads";
  }
  return "auto";
}

absl::Status ValidateIoEngineOptions(const IoEngineOptions& options) {
  if (options.path.empty()) {
    return absl::InvalidArgumentError("the I/O engine needs a data file path");
  }
  if (options.io_unit_bytes == 0 ||
      options.io_unit_bytes % base::kIoAlignment != 0 ||
      options.io_unit_bytes > kMaxIoUnitBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "io unit of ", options.io_unit_bytes, " bytes: must be a multiple of ",
        base::kIoAlignment, " up to ", kMaxIoUnitBytes));
  }
  if (options.queue_depth == 0 || options.queue_depth > kMaxQueueDepth) {
    return absl::InvalidArgumentError(
        absl::StrCat("queue depth ", options.queue_depth,
                     ": must be between 1 and ", kMaxQueueDepth));
  }
  return absl::OkStatus();
}

absl::Status IoEngine::Write(uint64_t offset,
                             absl::Span<const std::byte> data) {
  IoRequest request;
  request.op = IoOp::kWrite;
  request.offset = offset;
  // The engine only reads the buffer of a write.
  request.data = {const_cast<std::byte*>(data.data()), data.size()};
  TransferBatch({&request, 1});
  return request.status;
}

absl::Status IoEngine::Read(uint64_t offset, absl::Span<std::byte> data) {
  IoRequest request;
  request.offset = offset;
  request.data = data;
  TransferBatch({&request, 1});
  return request.status;
}

absl::Status CheckIoRequest(uint64_t offset, const void* data,
                            uint64_t length) {
  const auto address = reinterpret_cast<uintptr_t>(data);
  if (offset % base::kIoAlignment != 0 || length % base::kIoAlignment != 0 ||
      address % base::kIoAlignment != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("I/O of ", length, " bytes at offset ", offset,
                     " from address 0x", absl::Hex(address),
                     ": offset, length and buffer address must be "
                     "multiples of ",
                     base::kIoAlignment, " (use AlignedBuffer)"));
  }
  if (offset > kMaxFileOffset || length > kMaxFileOffset - offset) {
    return absl::InvalidArgumentError(
        absl::StrCat("I/O of ", length, " bytes at offset ", offset,
                     " reaches past the largest file offset"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<IoEngine>> OpenIoEngine(
    const IoEngineOptions& options) {
  if (absl::Status s = ValidateIoEngineOptions(options); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<DataFile>> file =
      DataFile::Open(options.path, options.direct_io);
  if (!file.ok()) return file.status();
  if (options.kind != IoEngineKind::kThreads) {
    absl::StatusOr<UringRing> ring = UringRing::Create(options.queue_depth);
    if (ring.ok()) {
      return std::make_unique<UringIoEngine>(*std::move(file), *std::move(ring),
                                             options);
    }
    if (options.kind == IoEngineKind::kIoUring) return ring.status();
    TP_LOG(WARNING) << ring.status().message()
                    << "; using the thread I/O engine instead";
  }
  return std::make_unique<ThreadIoEngine>(*std::move(file), options);
}

}  // namespace tensorpager::storage
