#include "server/pressure/cgroup_locator.h"

#include <optional>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/pressure/mountinfo.h"

namespace tensorpager::server {
namespace {

struct CgroupPaths {
  std::optional<std::string> v1_memory;
  std::optional<std::string> v2;
};

// /proc/self/cgroup lines are "hierarchy-id:controllers:path"; the v2 line
// is "0::path".
CgroupPaths ParseProcCgroup(absl::string_view text) {
  CgroupPaths paths;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (fields.size() != 3) continue;
    if (fields[0] == "0" && fields[1].empty()) {
      paths.v2 = std::string(fields[2]);
      continue;
    }
    for (absl::string_view controller : absl::StrSplit(fields[1], ',')) {
      if (controller == "memory") paths.v1_memory = std::string(fields[2]);
    }
  }
  return paths;
}

bool HasOption(absl::string_view options, absl::string_view wanted) {
  for (absl::string_view option : absl::StrSplit(options, ',')) {
    if (option == wanted) return true;
  }
  return false;
}

// Maps a cgroup path to a directory under the hierarchy's mount. The mount
// may expose only a subtree (mountinfo root "/docker/<id>"), and inside a
// cgroup namespace the path may be "/" or point outside the mount; then the
// mount point itself is the process's cgroup.
std::string CgroupDirectory(const RootedFs& fs, const MountEntry& mount,
                            absl::string_view cgroup_path) {
  std::string directory = mount.mount_point;
  if (mount.root == "/") {
    directory = JoinPath(mount.mount_point, cgroup_path);
  } else if (absl::StartsWith(cgroup_path, mount.root) &&
             (cgroup_path.size() == mount.root.size() ||
              cgroup_path[mount.root.size()] == '/')) {
    directory =
        JoinPath(mount.mount_point, cgroup_path.substr(mount.root.size()));
  }
  if (!fs.Exists(directory)) directory = mount.mount_point;
  return directory;
}

}  // namespace

absl::string_view CgroupVersionName(CgroupVersion version) {
  return version == CgroupVersion::kV1 ? "cgroup v1" : "cgroup v2";
}

absl::StatusOr<MemoryCgroup> LocateMemoryCgroup(const RootedFs& fs) {
  absl::StatusOr<std::string> proc_cgroup = fs.ReadFile("/proc/self/cgroup");
  if (!proc_cgroup.ok()) {
    return absl::NotFoundError(absl::StrCat("no cgroup information: ",
                                            proc_cgroup.status().message()));
  }
  const CgroupPaths paths = ParseProcCgroup(*proc_cgroup);
  absl::StatusOr<std::vector<MountEntry>> mounts = ReadMountinfo(fs);
  if (!mounts.ok()) return mounts.status();

  if (paths.v1_memory.has_value()) {
    for (const MountEntry& mount : *mounts) {
      if (mount.fs_type != "cgroup" ||
          !HasOption(mount.super_options, "memory")) {
        continue;
      }
      std::string directory = CgroupDirectory(fs, mount, *paths.v1_memory);
      if (fs.Exists(JoinPath(directory, "memory.usage_in_bytes"))) {
        return MemoryCgroup{.version = CgroupVersion::kV1,
                            .directory = std::move(directory),
                            .mount_point = mount.mount_point};
      }
    }
  }
  if (paths.v2.has_value()) {
    for (const MountEntry& mount : *mounts) {
      if (mount.fs_type != "cgroup2") continue;
      std::string directory = CgroupDirectory(fs, mount, *paths.v2);
      if (fs.Exists(JoinPath(directory, "memory.current"))) {
        return MemoryCgroup{.version = CgroupVersion::kV2,
                            .directory = std::move(directory),
                            .mount_point = mount.mount_point};
      }
    }
  }
  return absl::NotFoundError(
      "no memory cgroup with readable usage files (no v1 memory controller "
      "mount, and the v2 cgroup has no memory.current)");
}

}  // namespace tensorpager::server
