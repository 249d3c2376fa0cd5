#include "server/profile/storage_device.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/pressure/mountinfo.h"

namespace tensorpager::server {
namespace {

namespace fs = std::filesystem;

// Device-mapper over md over partitions is as deep as real stacks go.
constexpr int kMaxStackDepth = 4;

std::string ReadTrimmed(const fs::path& path) {
  // `path` is already below the root, so it is read as is.
  absl::StatusOr<std::string> text = RootedFs("/").ReadFile(path.string());
  if (!text.ok()) return "";
  return std::string(absl::StripAsciiWhitespace(*text));
}

// A partition's sysfs directory sits inside its disk's directory.
fs::path WholeDisk(const fs::path& block_dir) {
  std::error_code ec;
  if (fs::exists(block_dir / "partition", ec)) return block_dir.parent_path();
  return block_dir;
}

StorageInfo ClassifyDisk(const fs::path& disk_dir, int depth) {
  const std::string name = disk_dir.filename().string();
  StorageInfo info{.kind = StorageKind::kUnknown, .device = name, .reason = ""};

  std::error_code ec;
  const fs::path slaves = disk_dir / "slaves";
  if (depth < kMaxStackDepth && fs::is_directory(slaves, ec) &&
      !fs::is_empty(slaves, ec)) {
    // A stacked device is as fast as its slowest member.
    std::vector<std::string> members;
    StorageKind slowest = StorageKind::kNvme;
    for (const fs::directory_entry& entry :
         fs::directory_iterator(slaves, ec)) {
      const fs::path member = fs::canonical(entry.path(), ec);
      if (ec) continue;
      StorageInfo inner = ClassifyDisk(WholeDisk(member), depth + 1);
      slowest = std::max(slowest, inner.kind);
      members.push_back(inner.reason);
    }
    std::sort(members.begin(), members.end());
    info.kind = members.empty() ? StorageKind::kUnknown : slowest;
    info.reason =
        absl::StrCat(name, " over [", absl::StrJoin(members, "; "), "]");
    return info;
  }

  if (absl::StartsWith(name, "nvme")) {
    info.kind = StorageKind::kNvme;
    info.reason = absl::StrCat(name, ": NVMe");
    return info;
  }
  const std::string rotational = ReadTrimmed(disk_dir / "queue" / "rotational");
  const bool virtual_disk =
      absl::StartsWith(name, "vd") || absl::StartsWith(name, "xvd");
  if (rotational == "0") {
    info.kind = StorageKind::kSsd;
    info.reason = absl::StrCat(name, ": non-rotational");
  } else if (rotational == "1" && virtual_disk) {
    // virtio-blk and Xen front ends report rotational=1 by default whatever
    // backs them, and cloud volumes are overwhelmingly flash.
    info.kind = StorageKind::kSsd;
    info.reason = absl::StrCat(
        name,
        ": virtual disk whose rotational=1 flag cannot be trusted, "
        "counted as ssd (choose --profile=hdd if it is a spinning disk)");
  } else if (rotational == "1") {
    info.kind = StorageKind::kHdd;
    info.reason = absl::StrCat(name, ": rotational");
  } else {
    info.reason = absl::StrCat(name, ": no readable queue/rotational flag");
  }
  return info;
}

// The sysfs directory of block device major:minor, or empty.
fs::path BlockDirFor(const RootedFs& root_fs, unsigned major, unsigned minor) {
  const fs::path link =
      root_fs.Resolve(absl::StrCat("/sys/dev/block/", major, ":", minor));
  std::error_code ec;
  fs::path resolved = fs::canonical(link, ec);
  if (ec) return {};
  return resolved;
}

}  // namespace

absl::string_view StorageKindName(StorageKind kind) {
  switch (kind) {
    case StorageKind::kNvme:
      return "nvme";
    case StorageKind::kSsd:
      return "ssd";
    case StorageKind::kHdd:
      return "hdd";
    case StorageKind::kUnknown:
      return "unknown";
  }
  return "unknown";
}

StorageInfo DetectStorage(const RootedFs& root_fs, const std::string& path) {
  std::error_code ec;
  fs::path existing = fs::absolute(path, ec);
  if (ec) existing = path;
  existing = existing.lexically_normal();
  while (!fs::exists(existing, ec) && existing.has_relative_path()) {
    existing = existing.parent_path();
  }
  struct stat st {};
  if (::stat(existing.c_str(), &st) != 0) {
    return StorageInfo{.kind = StorageKind::kUnknown,
                       .device = "",
                       .reason = absl::StrCat("cannot stat ", existing.string(),
                                              ": ", std::strerror(errno))};
  }
  unsigned major_number = major(st.st_dev);
  unsigned minor_number = minor(st.st_dev);
  fs::path block_dir = BlockDirFor(root_fs, major_number, minor_number);
  std::string device_note;
  if (block_dir.empty()) {
    // btrfs and overlayfs hand out anonymous device numbers; mountinfo
    // still names the backing device of the mount.
    absl::StatusOr<std::vector<MountEntry>> mounts = ReadMountinfo(root_fs);
    const MountEntry* mount =
        mounts.ok()
            ? FindMountFor(*mounts, fs::canonical(existing, ec).string())
            : nullptr;
    if (mount != nullptr) {
      block_dir = BlockDirFor(root_fs, mount->major, mount->minor);
      device_note =
          absl::StrCat(" (", mount->fs_type, " on ", mount->source, ")");
    }
  }
  if (block_dir.empty()) {
    return StorageInfo{
        .kind = StorageKind::kUnknown,
        .device = "",
        .reason = absl::StrCat(existing.string(), " is on device ",
                               major_number, ":", minor_number, device_note,
                               ", which has no /sys/dev/block entry")};
  }
  StorageInfo info = ClassifyDisk(WholeDisk(block_dir), 0);
  info.reason = absl::StrCat(existing.string(), " on ", info.reason);
  return info;
}

}  // namespace tensorpager::server
