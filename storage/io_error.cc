#include "storage/io_error.h"

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace tensorpager::storage {

std::string ErrnoText(int err) {
  char buf[128];
  // GNU strerror_r: returns a pointer to the text, which may be `buf` or a
  // static string.
  const char* text = strerror_r(err, buf, sizeof(buf));
  const char* name = strerrorname_np(err);
  return absl::StrCat(name != nullptr ? name : absl::StrCat("errno ", err),
                      " (", text, ")");
}

absl::Status IoErrorStatus(int err, IoOp op, absl::string_view what) {
  const std::string base = absl::StrCat(what, ": ", ErrnoText(err));
  switch (err) {
    case ENOSPC:
      return absl::ResourceExhaustedError(absl::StrCat(
          base,
          "; the filesystem is full: free space there or lower the "
          "swap size"));
    case EDQUOT:
      return absl::ResourceExhaustedError(absl::StrCat(
          base,
          "; the disk quota is used up: raise it or lower the swap "
          "size"));
    case EFBIG:
      return absl::OutOfRangeError(absl::StrCat(
          base, "; the file would exceed the filesystem's maximum file size"));
    case EIO:
      switch (op) {
        case IoOp::kRead:
          return absl::DataLossError(absl::StrCat(
              base, "; the device cannot return these bytes (see dmesg)"));
        case IoOp::kSync:
          return absl::DataLossError(absl::StrCat(
              base,
              "; writes since the last successful sync may not have "
              "reached the disk (see dmesg)"));
        default:
          return absl::InternalError(
              absl::StrCat(base, "; the device failed (see dmesg)"));
      }
    case EROFS:
      return absl::FailedPreconditionError(
          absl::StrCat(base, "; the filesystem is mounted read-only"));
    case EACCES:
    case EPERM:
      if (op == IoOp::kSetup) {
        return absl::FailedPreconditionError(absl::StrCat(
            base,
            "; the kernel or a seccomp profile (e.g. Docker's default) "
            "forbids io_uring: allow it or use the thread engine"));
      }
      return absl::PermissionDeniedError(base);
    case ENOSYS:
      return absl::FailedPreconditionError(absl::StrCat(
          base, op == IoOp::kSetup
                    ? "; the kernel lacks io_uring or a seccomp profile hides "
                      "it: use the thread engine"
                    : "; the kernel does not support this call"));
    case ENOENT:
    case ENOTDIR:
      return absl::NotFoundError(
          absl::StrCat(base, "; create the directory first"));
    case EISDIR:
      return absl::FailedPreconditionError(
          absl::StrCat(base, "; the path names a directory, not a file"));
    case EINVAL:
      return absl::InvalidArgumentError(absl::StrCat(
          base, op == IoOp::kOpen || op == IoOp::kSetup
                    ? ""
                    : "; the filesystem rejected the request (its direct "
                      "I/O alignment may exceed 4096 bytes)"));
    case ENOMEM:
    case EMFILE:
    case ENFILE:
      return absl::ResourceExhaustedError(base);
    case EAGAIN:
    case EBUSY:
    case ENXIO:
    case ENODEV:
      return absl::UnavailableError(base);
    case EOPNOTSUPP:
      return absl::UnimplementedError(base);
    default:
      return absl::InternalError(base);
  }
}

absl::Status ShortTransferStatus(IoOp op, absl::string_view what, uint64_t done,
                                 uint64_t file_size) {
  if (op == IoOp::kRead) {
    return absl::OutOfRangeError(absl::StrCat(what, ": the file ends after ",
                                              done, " of them (file size ",
                                              file_size, ")"));
  }
  return absl::InternalError(absl::StrCat(
      what, ": the kernel accepted no bytes after ", done, " of them"));
}

}  // namespace tensorpager::storage
