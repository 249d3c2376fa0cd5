// One transfer of a batch handed to an I/O engine (IoEngine::TransferBatch).
#ifndef TENSORPAGER_STORAGE_IO_REQUEST_H_
#define TENSORPAGER_STORAGE_IO_REQUEST_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "storage/io_error.h"

namespace tensorpager::storage {

struct IoRequest {
  IoOp op = IoOp::kRead;  // kRead or kWrite
  uint64_t offset = 0;
  // Read into, or written from (a write only reads it).
  absl::Span<std::byte> data;
  absl::Status status;  // the outcome, set by TransferBatch
};

}  // namespace tensorpager::storage

#endif  // TENSORPAGER_STORAGE_IO_REQUEST_H_
