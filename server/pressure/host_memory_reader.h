// Host RAM usage as this process experiences it: the memory cgroup's usage
// against its limit when one is set, the host's /proc/meminfo otherwise,
// plus pressure-stall information when the kernel provides it.
#ifndef TENSORPAGER_SERVER_PRESSURE_HOST_MEMORY_READER_H_
#define TENSORPAGER_SERVER_PRESSURE_HOST_MEMORY_READER_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "server/pressure/cgroup_locator.h"
#include "server/pressure/psi.h"
#include "server/pressure/rooted_fs.h"

namespace tensorpager::server {

struct HostMemoryReading {
  // Memory that cannot be had without swapping or OOM: cgroup usage minus
  // its inactive page cache (reclaimable at once, as the kubelet counts a
  // working set), or MemTotal - MemAvailable.
  uint64_t used_bytes = 0;
  uint64_t total_bytes = 0;
  // "cgroup v1", "cgroup v2" or "/proc/meminfo".
  std::string source;
  // Why this source and which bound applied, for Status and logs; empty
  // when there is nothing to add.
  std::string note;
  std::optional<PsiStats> psi;
};

class HostMemoryReader {
 public:
  // Locates the memory cgroup and the PSI file once (a process does not
  // change cgroup); everything below `fs`'s root.
  explicit HostMemoryReader(RootedFs fs);

  // Fails only when /proc/meminfo is unreadable; an unreadable cgroup falls
  // back to /proc/meminfo with a note.
  absl::StatusOr<HostMemoryReading> Read() const;

  // One line for the startup log: the cgroup and PSI files in use.
  const std::string& description() const { return description_; }

 private:
  struct Meminfo {
    uint64_t total = 0;
    uint64_t available = 0;
  };
  struct CgroupUsage {
    uint64_t used = 0;   // usage minus inactive file cache
    uint64_t limit = 0;  // UINT64_MAX when unlimited
  };

  absl::StatusOr<Meminfo> ReadMeminfo() const;
  absl::StatusOr<CgroupUsage> ReadCgroupV1(const MemoryCgroup& cgroup) const;
  absl::StatusOr<CgroupUsage> ReadCgroupV2(const MemoryCgroup& cgroup) const;
  std::optional<PsiStats> ReadPsi() const;

  RootedFs fs_;
  std::optional<MemoryCgroup> cgroup_;
  std::optional<std::string> psi_path_;
  std::string description_;
};

}  // namespace tensorpager::server

#endif  // TENSORPAGER_SERVER_PRESSURE_HOST_MEMORY_READER_H_
