// Writing a file the user named (tpctl get FILE, tensorpagerd --ready_file)
// without replacing what is not a file. Shared by tensorpagerd and tpctl,
// which links it as tp_output_file (it links no server library).
#ifndef TENSORPAGER_STORAGE_BASE_OUTPUT_FILE_H_
#define TENSORPAGER_STORAGE_BASE_OUTPUT_FILE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tensorpager::base {

// Writes `data` to `path`, following symlinks to decide how:
//  - a regular file, or a name not taken yet: written under a temporary
//    name beside it and renamed over it, so that the name holds the old
//    bytes or the new, never a part;
//  - a character or block device (/dev/null), a FIFO or a terminal:
//    opened and written in place (a FIFO waits for its reader). Renaming
//    over one would put a regular file where the device node or pipe was;
//    as root, that replaced /dev/null itself.
// A directory or a socket is FAILED_PRECONDITION, as is a name that
// cannot be created or renamed; a failed write is DATA_LOSS. A reader that
// goes away is an error, not SIGPIPE.
absl::Status WriteOutputFile(const std::string& path, absl::string_view data);

}  // namespace tensorpager::base

#endif  // TENSORPAGER_STORAGE_BASE_OUTPUT_FILE_H_
