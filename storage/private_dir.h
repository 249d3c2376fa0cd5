// Directories that hold block bytes and ids are the server user's alone:
// another local user must not read a tenant's tensors or their names.
#ifndef TENSORPAGER_STORAGE_PRIVATE_DIR_H_
#define TENSORPAGER_STORAGE_PRIVATE_DIR_H_

#include <string>
#include <system_error>

namespace tensorpager::storage {

// Creates `dir` with mode 0700 (missing parents get the usual mode, as
// with mkdir -p). An existing `dir` open to the group or others is
// tightened to 0700, with a log line saying so. Left as it is, with a
// warning: a shared sticky directory such as /tmp (the files inside are
// private anyway), or one this user may not chmod. Returns the error that
// kept `dir` from being a directory.
std::error_code MakePrivateDirectory(const std::string& dir);

}  // namespace tensorpager::storage

#endif  // TENSORPAGER_STORAGE_PRIVATE_DIR_H_
