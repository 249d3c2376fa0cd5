// Finds the memory cgroup that limits this process: its hierarchy version
// and its directory, from /proc/self/cgroup and /proc/self/mountinfo.
#ifndef TENSORPAGER_SERVER_PRESSURE_CGROUP_LOCATOR_H_
#define TENSORPAGER_SERVER_PRESSURE_CGROUP_LOCATOR_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/pressure/rooted_fs.h"

namespace tensorpager::server {

enum class CgroupVersion { kV1, kV2 };

// "cgroup v1" or "cgroup v2".
absl::string_view CgroupVersionName(CgroupVersion version);

struct MemoryCgroup {
  CgroupVersion version = CgroupVersion::kV1;
  // Absolute paths as the process sees them (resolve through RootedFs).
  std::string directory;
  // The hierarchy's mount point: the topmost ancestor worth reading.
  std::string mount_point;
};

// NOT_FOUND when the process has no memory cgroup whose files are visible
// (cgroups disabled, the controller not mounted, or only the v2 root
// cgroup, which has no memory.current); the caller then uses the host's
// /proc/meminfo. A v1 memory controller wins over v2 on hybrid hosts,
// where it is the one that enforces limits.
absl::StatusOr<MemoryCgroup> LocateMemoryCgroup(const RootedFs& fs);

}  // namespace tensorpager::server

#endif  // TENSORPAGER_SERVER_PRESSURE_CGROUP_LOCATOR_H_
