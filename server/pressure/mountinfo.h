// /proc/self/mountinfo, the one place that says where each filesystem (the
// cgroup hierarchies included) is mounted and which part of it.
#ifndef TENSORPAGER_SERVER_PRESSURE_MOUNTINFO_H_
#define TENSORPAGER_SERVER_PRESSURE_MOUNTINFO_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/pressure/rooted_fs.h"

namespace tensorpager::server {

struct MountEntry {
  unsigned major = 0;
  unsigned minor = 0;
  std::string root;         // the mounted part of the filesystem ("/" whole)
  std::string mount_point;  // where the process sees it
  std::string fs_type;      // "cgroup", "cgroup2", "ext4", ...
  std::string source;       // "/dev/vda", "cgroup", ...
  std::string super_options;
};

// Parses mountinfo text (octal escapes such as \040 decoded). A malformed
// line is INTERNAL with the line number.
absl::StatusOr<std::vector<MountEntry>> ParseMountinfo(absl::string_view text);

// Reads and parses /proc/self/mountinfo below `fs`'s root.
absl::StatusOr<std::vector<MountEntry>> ReadMountinfo(const RootedFs& fs);

// The entry whose mount point is the longest prefix of the absolute,
// normalized `path` (the filesystem holding it); null when none matches.
const MountEntry* FindMountFor(const std::vector<MountEntry>& mounts,
                               absl::string_view path);

}  // namespace tensorpager::server

#endif  // TENSORPAGER_SERVER_PRESSURE_MOUNTINFO_H_
