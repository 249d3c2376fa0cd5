// Maps an errno from a data-file operation to a status code a caller can act
// on. Which code an errno deserves depends on the operation: EIO on a read
// means bytes are unreadable (DATA_LOSS), on a write it means the device
// failed before anything was acknowledged (INTERNAL).
#ifndef TENSORPAGER_STORAGE_IO_ERROR_H_
#define TENSORPAGER_STORAGE_IO_ERROR_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tensorpager::storage {

enum class IoOp { kOpen, kRead, kWrite, kSync, kReserve, kSetup };

// `what` describes the operation, e.g. "writing 4096 bytes at offset 0 of
// /data/blocks.dat"; the message adds the errno's name, text and a hint.
absl::Status IoErrorStatus(int err, IoOp op, absl::string_view what);

// "ENOSPC (No space left on device)".
std::string ErrnoText(int err);

}  // namespace tensorpager::storage

#endif  // TENSORPAGER_STORAGE_IO_ERROR_H_
