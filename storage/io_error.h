// Maps an errno from a data-file operation to a status code a caller can act
// on. Which code an errno deserves depends on the operation: EIO on a read
// means bytes are unreadable (DATA_LOSS), on a write it means the device
// failed before anything was acknowledged (INTERNAL).
#ifndef TENSORPAGER_STORAGE_IO_ERROR_H_
#define TENSORPAGER_STORAGE_IO_ERROR_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tensorpager::storage {

enum class IoOp { kOpen, kRead, kWrite, kSync, kReserve, kSetup };

// `what` describes the operation, e.g. "writing 4096 bytes at offset 0 of
// /data/blocks.dat"; the message adds the errno's name, text and a hint.
absl::Status IoErrorStatus(int err, IoOp op, absl::string_view what);

// A transfer that stopped after `done` bytes with no errno: the file ended
// (a read, OUT_OF_RANGE) or the kernel took no more bytes (a write,
// INTERNAL; retrying could spin forever). `what` as for IoErrorStatus.
absl::Status ShortTransferStatus(IoOp op, absl::string_view what, uint64_t done,
                                 uint64_t file_size);

// "ENOSPC (No space left on device)".
std::string ErrnoText(int err);

}  // namespace tensorpager::storage

#endif  // TENSORPAGER_STORAGE_IO_ERROR_H_
