// What kind of drive holds a directory (NVMe, SATA/SAS SSD, rotating disk),
// found through sysfs: the directory's device number, /sys/dev/block, the
// whole disk behind a partition, and the disks behind a device-mapper or
// md device.
#ifndef TENSORPAGER_SERVER_PROFILE_STORAGE_DEVICE_H_
#define TENSORPAGER_SERVER_PROFILE_STORAGE_DEVICE_H_

#include <string>

#include "absl/strings/string_view.h"
#include "server/pressure/rooted_fs.h"

namespace tensorpager::server {

// Ordered from fastest to slowest, so the slowest member of a stacked
// device can be taken with std::max.
enum class StorageKind { kNvme, kSsd, kHdd, kUnknown };

// "nvme", "ssd", "hdd", "unknown".
absl::string_view StorageKindName(StorageKind kind);

struct StorageInfo {
  StorageKind kind = StorageKind::kUnknown;
  std::string device;  // the disk the kind was read from ("nvme0n1", "vda")
  // How the kind was decided, e.g. "vda: virtio disk; its rotational flag
  // is not reliable, counted as ssd".
  std::string reason;
};

// `path` is a real path (stat'ed as is; a path that does not exist yet is
// judged by its nearest existing parent). /sys and /proc are read below
// `fs`'s root. Never fails: what cannot be determined is kUnknown with the
// reason.
StorageInfo DetectStorage(const RootedFs& fs, const std::string& path);

}  // namespace tensorpager::server

#endif  // TENSORPAGER_SERVER_PROFILE_STORAGE_DEVICE_H_
