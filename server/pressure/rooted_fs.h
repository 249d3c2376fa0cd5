// Read-only access to files below a configurable root. Production uses "/";
// tests point the root at a temp dir laid out like /sys and /proc, which is
// how the pressure monitor and the hardware detection are fed a cgroup v1
// or v2 host, an NVMe or a rotating disk on a machine that has neither.
#ifndef TENSORPAGER_SERVER_PRESSURE_ROOTED_FS_H_
#define TENSORPAGER_SERVER_PRESSURE_ROOTED_FS_H_

#include <cstdint>
#include <filesystem>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tensorpager::server {

class RootedFs {
 public:
  explicit RootedFs(std::filesystem::path root);

  const std::filesystem::path& root() const { return root_; }

  // `path` is absolute as the process sees it ("/proc/meminfo").
  std::filesystem::path Resolve(absl::string_view path) const;
  bool Exists(absl::string_view path) const;
  // The whole file (kernel pseudo-files are small; more than 1 MiB is
  // refused as OUT_OF_RANGE). NOT_FOUND when absent, other errno-derived
  // codes otherwise; messages name the resolved path.
  absl::StatusOr<std::string> ReadFile(absl::string_view path) const;
  // A file holding one unsigned number, like memory.current.
  absl::StatusOr<uint64_t> ReadUint64(absl::string_view path) const;

 private:
  std::filesystem::path root_;
};

// Joins absolute in-root paths: JoinPath("/sys/block", "vda/queue").
std::string JoinPath(absl::string_view base, absl::string_view tail);

// Parses "name value [kB]" lines (memory.stat, /proc/meminfo; a trailing
// ':' on the name is dropped and kB values are converted to bytes). Lines
// that do not fit are skipped: kernels add fields over time.
absl::flat_hash_map<std::string, uint64_t> ParseCounters(
    absl::string_view text);

// One unsigned decimal number, surrounding whitespace allowed.
absl::StatusOr<uint64_t> ParseUint64(absl::string_view text,
                                     absl::string_view what);

}  // namespace tensorpager::server

#endif  // TENSORPAGER_SERVER_PRESSURE_ROOTED_FS_H_
