// The hardware tensorpagerd runs on (the data dir's drive, RAM, GPUs) and
// the profile of defaults chosen from it. The result says which profile and
// why in one line for the startup log and the Status RPC.
#ifndef TENSORPAGER_SERVER_PROFILE_HARDWARE_PROFILE_H_
#define TENSORPAGER_SERVER_PROFILE_HARDWARE_PROFILE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/pressure/gpu_source.h"
#include "server/profile/storage_device.h"

namespace tensorpager::server {

enum class ProfileKind { kAuto, kNvme, kSsd, kHdd, kLowMemory };

// "auto", "nvme", "ssd", "hdd", "low-memory".
absl::string_view ProfileKindName(ProfileKind kind);
// Accepts those names in any case; INVALID_ARGUMENT lists them otherwise.
absl::StatusOr<ProfileKind> ParseProfileKind(absl::string_view text);

struct HardwareInfo {
  StorageInfo storage;
  // RAM this process may use: the memory cgroup's limit when it has one
  // below the host's RAM, else MemTotal.
  uint64_t ram_bytes = 0;
  std::string ram_source;         // "cgroup v1", "/proc/meminfo", ...
  std::vector<std::string> gpus;  // one name per device
  std::string gpu_note;           // why no GPUs were counted, if none
};

struct ProfileDefaults {
  std::string algorithm;  // "lru", "clock", "adaptive"
  double swap_threshold = 0.0;
  uint64_t io_block_bytes = 0;
  uint32_t max_concurrent_swaps = 0;
  uint32_t io_queue_depth = 0;
  // Share of ram_bytes to use as the RAM tier's budget.
  double ram_budget_fraction = 0.0;
};

struct HardwareProfile {
  ProfileKind requested = ProfileKind::kAuto;
  ProfileKind kind = ProfileKind::kSsd;  // never kAuto
  HardwareInfo hardware;
  ProfileDefaults defaults;
  // e.g. "profile nvme (auto): /data on nvme0n1: NVMe; RAM 64.0 GiB
  // (cgroup v1); 1 GPU (NVIDIA H100)".
  std::string reason;
};

inline constexpr uint64_t kDefaultLowMemoryBytes = 8ull << 30;

struct HardwareDetectOptions {
  std::string root = "/";  // where /proc and /sys are
  std::string data_dir;    // a real path; need not exist yet
  // Counts GPUs when set (not owned; e.g. the NVML source that is then
  // handed to the pressure monitor).
  GpuSource* gpu_source = nullptr;
  // Why there is no gpu_source (e.g. NvmlGpuSource::Open's error), for the
  // profile's reason line.
  std::string gpu_source_error;
};

// INVALID_ARGUMENT without a data dir; the error of reading /proc/meminfo
// when RAM cannot be sized. An undeterminable drive is StorageKind::kUnknown.
absl::StatusOr<HardwareInfo> DetectHardware(
    const HardwareDetectOptions& options);

// The profile for `requested` on `hardware`: auto picks low-memory below
// `low_memory_bytes` of RAM, else the storage kind's profile (ssd when the
// kind is unknown).
HardwareProfile ChooseProfile(
    ProfileKind requested, const HardwareInfo& hardware,
    uint64_t low_memory_bytes = kDefaultLowMemoryBytes);

}  // namespace tensorpager::server

#endif  // TENSORPAGER_SERVER_PROFILE_HARDWARE_PROFILE_H_
