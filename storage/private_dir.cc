#include "storage/private_dir.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_format.h"
#include "storage/base/log.h"

namespace tensorpager::storage {
namespace {

constexpr mode_t kPrivate = S_IRWXU;
constexpr mode_t kGroupOrOthers = S_IRWXG | S_IRWXO;

std::error_code Errno() {
  return std::error_code(errno, std::generic_category());
}

}  // namespace

std::error_code MakePrivateDirectory(const std::string& dir) {
  std::filesystem::path path(dir);
  if (!path.has_filename()) path = path.parent_path();  // "a/b/" is "a/b"
  std::error_code ec;
  if (path.has_parent_path()) {
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec) return ec;
  }
  // mkdir(2) itself, rather than create_directories, so that the directory
  // never exists with a wider mode, not even for a moment.
  if (::mkdir(path.c_str(), kPrivate) == 0) return {};
  if (errno != EEXIST) return Errno();
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Errno();
  if (!S_ISDIR(st.st_mode)) {
    return std::make_error_code(std::errc::not_a_directory);
  }
  const mode_t mode = st.st_mode & 07777;
  if ((mode & kGroupOrOthers) == 0) return {};
  if ((mode & S_ISVTX) != 0) {
    TP_LOG(WARNING) << path.string() << " is a shared directory (mode "
                    << absl::StrFormat("%04o", mode)
                    << "); leaving its mode alone, the files inside are "
                       "private";
    return {};
  }
  if (::chmod(path.c_str(), kPrivate) != 0) {
    TP_LOG(WARNING) << "cannot tighten " << path.string() << " (mode "
                    << absl::StrFormat("%04o", mode)
                    << ") to 0700: " << std::strerror(errno)
                    << "; other local users may read block bytes and ids";
    return {};
  }
  TP_LOG(WARNING) << "tightened " << path.string() << " from mode "
                  << absl::StrFormat("%04o", mode)
                  << " to 0700: other local users could read block bytes "
                     "and ids";
  return {};
}

}  // namespace tensorpager::storage
