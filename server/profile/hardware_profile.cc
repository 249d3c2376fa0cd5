#include "server/profile/hardware_profile.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "server/pressure/host_memory_reader.h"
#include "server/pressure/rooted_fs.h"

namespace tensorpager::server {
namespace {

constexpr uint64_t kMiB = 1ull << 20;
// GPU inference servers pin host memory for their own transfers and
// staging, so with GPUs the RAM tier leaves them this much more room.
constexpr double kGpuBudgetReduction = 0.10;

// Why these numbers: NVMe drives want deep queues and many requests in
// flight; SATA's NCQ caps at 32 commands; a rotating disk wants few, large,
// sequential requests and an earlier start, since each swap costs seeks;
// with little RAM the tier must stay small and swapping starts early.
ProfileDefaults DefaultsFor(ProfileKind kind) {
  switch (kind) {
    case ProfileKind::kNvme:
      return {.algorithm = "adaptive",
              .swap_threshold = 0.80,
              .io_block_bytes = 4 * kMiB,
              .max_concurrent_swaps = 8,
              .io_queue_depth = 32,
              .ram_budget_fraction = 0.50};
    case ProfileKind::kAuto:
    case ProfileKind::kSsd:
      return {.algorithm = "adaptive",
              .swap_threshold = 0.75,
              .io_block_bytes = 2 * kMiB,
              .max_concurrent_swaps = 4,
              .io_queue_depth = 16,
              .ram_budget_fraction = 0.50};
    case ProfileKind::kHdd:
      return {.algorithm = "lru",
              .swap_threshold = 0.70,
              .io_block_bytes = 8 * kMiB,
              .max_concurrent_swaps = 2,
              .io_queue_depth = 4,
              .ram_budget_fraction = 0.60};
    case ProfileKind::kLowMemory:
      return {.algorithm = "clock",
              .swap_threshold = 0.65,
              .io_block_bytes = 1 * kMiB,
              .max_concurrent_swaps = 2,
              .io_queue_depth = 8,
              .ram_budget_fraction = 0.25};
  }
  return DefaultsFor(ProfileKind::kSsd);
}

ProfileKind ProfileForStorage(StorageKind kind) {
  switch (kind) {
    case StorageKind::kNvme:
      return ProfileKind::kNvme;
    case StorageKind::kHdd:
      return ProfileKind::kHdd;
    case StorageKind::kSsd:
    case StorageKind::kUnknown:
      return ProfileKind::kSsd;
  }
  return ProfileKind::kSsd;
}

std::string GiB(uint64_t bytes) {
  return absl::StrFormat("%.1f GiB", static_cast<double>(bytes) / (1ull << 30));
}

}  // namespace

absl::string_view ProfileKindName(ProfileKind kind) {
  switch (kind) {
    case ProfileKind::kAuto:
      return "auto";
    case ProfileKind::kNvme:
      return "nvme";
    case ProfileKind::kSsd:
      return "ssd";
    case ProfileKind::kHdd:
      return "hdd";
    case ProfileKind::kLowMemory:
      return "low-memory";
  }
  return "auto";
}

absl::StatusOr<ProfileKind> ParseProfileKind(absl::string_view text) {
  const std::string lower = absl::AsciiStrToLower(text);
  for (ProfileKind kind :
       {ProfileKind::kAuto, ProfileKind::kNvme, ProfileKind::kSsd,
        ProfileKind::kHdd, ProfileKind::kLowMemory}) {
    if (lower == ProfileKindName(kind)) return kind;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown profile \"", text,
                   "\"; use auto, nvme, ssd, hdd or low-memory"));
}

absl::StatusOr<HardwareInfo> DetectHardware(
    const HardwareDetectOptions& options) {
  if (options.data_dir.empty()) {
    return absl::InvalidArgumentError(
        "hardware detection needs the data dir to find its drive");
  }
  RootedFs root_fs(options.root);
  HardwareInfo info;
  info.storage = DetectStorage(root_fs, options.data_dir);

  absl::StatusOr<HostMemoryReading> ram = HostMemoryReader(root_fs).Read();
  if (!ram.ok()) return ram.status();
  info.ram_bytes = ram->total_bytes;
  info.ram_source = ram->source;

  if (options.gpu_source == nullptr) {
    info.gpu_note = options.gpu_source_error.empty() ? "no GPU source"
                                                     : options.gpu_source_error;
  } else if (absl::StatusOr<std::vector<GpuMemory>> gpus =
                 options.gpu_source->Sample();
             !gpus.ok()) {
    info.gpu_note =
        absl::StrCat(options.gpu_source->name(), ": ", gpus.status().message());
  } else {
    for (const GpuMemory& gpu : *gpus) {
      info.gpus.push_back(gpu.name.empty() ? absl::StrCat("gpu", gpu.device)
                                           : gpu.name);
    }
    if (info.gpus.empty()) {
      info.gpu_note =
          absl::StrCat(options.gpu_source->name(), " reports no devices");
    }
  }
  return info;
}

HardwareProfile ChooseProfile(ProfileKind requested,
                              const HardwareInfo& hardware,
                              uint64_t low_memory_bytes) {
  HardwareProfile profile;
  profile.requested = requested;
  profile.hardware = hardware;
  std::string why;
  if (requested != ProfileKind::kAuto) {
    profile.kind = requested;
    why = "requested";
  } else if (hardware.ram_bytes < low_memory_bytes) {
    profile.kind = ProfileKind::kLowMemory;
    why = absl::StrCat("auto: RAM below ", GiB(low_memory_bytes));
  } else {
    profile.kind = ProfileForStorage(hardware.storage.kind);
    why = hardware.storage.kind == StorageKind::kUnknown
              ? "auto: drive unknown, assuming ssd"
              : absl::StrCat("auto: data dir on ",
                             StorageKindName(hardware.storage.kind));
  }
  profile.defaults = DefaultsFor(profile.kind);

  std::string gpus =
      hardware.gpus.empty()
          ? absl::StrCat("no GPU (", hardware.gpu_note, ")")
          : absl::StrCat(hardware.gpus.size(), " GPU",
                         hardware.gpus.size() == 1 ? "" : "s", " (",
                         absl::StrJoin(hardware.gpus, ", "), ")");
  if (!hardware.gpus.empty()) {
    profile.defaults.ram_budget_fraction -= kGpuBudgetReduction;
    absl::StrAppend(&gpus, ", RAM budget lowered to leave pinned-memory room");
  }
  profile.reason = absl::StrFormat(
      "profile %s (%s): %s; RAM %s (%s); %s; defaults: algorithm=%s "
      "swap_threshold=%.2f io_block=%d MiB concurrent_swaps=%d "
      "queue_depth=%d ram_budget=%.0f%%",
      ProfileKindName(profile.kind), why, hardware.storage.reason,
      GiB(hardware.ram_bytes), hardware.ram_source, gpus,
      profile.defaults.algorithm, profile.defaults.swap_threshold,
      profile.defaults.io_block_bytes / kMiB,
      profile.defaults.max_concurrent_swaps, profile.defaults.io_queue_depth,
      profile.defaults.ram_budget_fraction * 100.0);
  return profile;
}

}  // namespace tensorpager::server
