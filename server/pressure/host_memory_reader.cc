#include "server/pressure/host_memory_reader.h"

#include <algorithm>
#include <filesystem>
#include <limits>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace tensorpager::server {
namespace {

constexpr uint64_t kUnlimited = std::numeric_limits<uint64_t>::max();

// memory.max and memory.high hold a byte count or "max".
absl::StatusOr<uint64_t> ReadV2Limit(const RootedFs& fs,
                                     const std::string& path) {
  absl::StatusOr<std::string> text = fs.ReadFile(path);
  if (!text.ok()) return text.status();
  if (absl::StripAsciiWhitespace(*text) == "max") return kUnlimited;
  return ParseUint64(*text, fs.Resolve(path).string());
}

uint64_t Lookup(const absl::flat_hash_map<std::string, uint64_t>& counters,
                absl::string_view name, uint64_t fallback) {
  auto it = counters.find(name);
  return it == counters.end() ? fallback : it->second;
}

}  // namespace

HostMemoryReader::HostMemoryReader(RootedFs fs) : fs_(std::move(fs)) {
  absl::StatusOr<MemoryCgroup> cgroup = LocateMemoryCgroup(fs_);
  if (cgroup.ok()) {
    cgroup_ = *std::move(cgroup);
    description_ = absl::StrCat("memory ", CgroupVersionName(cgroup_->version),
                                " at ", cgroup_->directory);
  } else {
    description_ =
        absl::StrCat("/proc/meminfo (", cgroup.status().message(), ")");
  }

  // A v2 cgroup's own stall figures are the precise ones; the system-wide
  // file is the fallback (and the only one under v1).
  std::vector<std::string> candidates;
  if (cgroup_.has_value() && cgroup_->version == CgroupVersion::kV2) {
    candidates.push_back(JoinPath(cgroup_->directory, "memory.pressure"));
  }
  candidates.push_back("/proc/pressure/memory");
  std::string psi_error = "no PSI file";
  for (const std::string& candidate : candidates) {
    absl::StatusOr<std::string> text = fs_.ReadFile(candidate);
    absl::StatusOr<PsiStats> psi =
        text.ok() ? ParsePsi(*text) : absl::StatusOr<PsiStats>(text.status());
    if (psi.ok()) {
      psi_path_ = candidate;
      break;
    }
    psi_error = std::string(psi.status().message());
  }
  absl::StrAppend(&description_, "; PSI ",
                  psi_path_.has_value()
                      ? absl::StrCat("from ", *psi_path_)
                      : absl::StrCat("unavailable (", psi_error, ")"));
}

absl::StatusOr<HostMemoryReader::Meminfo> HostMemoryReader::ReadMeminfo()
    const {
  absl::StatusOr<std::string> text = fs_.ReadFile("/proc/meminfo");
  if (!text.ok()) return text.status();
  const auto counters = ParseCounters(*text);
  Meminfo meminfo;
  meminfo.total = Lookup(counters, "MemTotal", 0);
  if (meminfo.total == 0) {
    return absl::InternalError(absl::StrCat(
        fs_.Resolve("/proc/meminfo").string(), " has no MemTotal"));
  }
  // MemAvailable appeared in Linux 3.14; before that, free memory plus the
  // page cache is the usual estimate.
  meminfo.available = Lookup(
      counters, "MemAvailable",
      Lookup(counters, "MemFree", 0) + Lookup(counters, "Buffers", 0) +
          Lookup(counters, "Cached", 0) + Lookup(counters, "SReclaimable", 0));
  meminfo.available = std::min(meminfo.available, meminfo.total);
  return meminfo;
}

absl::StatusOr<HostMemoryReader::CgroupUsage> HostMemoryReader::ReadCgroupV1(
    const MemoryCgroup& cgroup) const {
  const std::string& dir = cgroup.directory;
  absl::StatusOr<uint64_t> usage =
      fs_.ReadUint64(JoinPath(dir, "memory.usage_in_bytes"));
  if (!usage.ok()) return usage.status();
  absl::StatusOr<uint64_t> limit =
      fs_.ReadUint64(JoinPath(dir, "memory.limit_in_bytes"));
  if (!limit.ok()) return limit.status();
  absl::StatusOr<std::string> stat = fs_.ReadFile(JoinPath(dir, "memory.stat"));
  if (!stat.ok()) return stat.status();
  const auto counters = ParseCounters(*stat);
  // A parent's lower limit binds too; v1 reports it in memory.stat.
  const uint64_t effective_limit =
      std::min(*limit, Lookup(counters, "hierarchical_memory_limit", *limit));
  const uint64_t inactive_file = Lookup(counters, "total_inactive_file",
                                        Lookup(counters, "inactive_file", 0));
  return CgroupUsage{.used = *usage - std::min(inactive_file, *usage),
                     .limit = effective_limit};
}

absl::StatusOr<HostMemoryReader::CgroupUsage> HostMemoryReader::ReadCgroupV2(
    const MemoryCgroup& cgroup) const {
  const std::string& dir = cgroup.directory;
  absl::StatusOr<uint64_t> usage =
      fs_.ReadUint64(JoinPath(dir, "memory.current"));
  if (!usage.ok()) return usage.status();
  // v2 has no hierarchical summary, so walk up to the mount. memory.high
  // counts as a limit: above it the kernel throttles allocations hard,
  // which for a latency-bound inference server is as bad as the OOM killer.
  uint64_t limit = kUnlimited;
  std::filesystem::path level(dir);
  const std::filesystem::path top(cgroup.mount_point);
  while (true) {
    for (const char* file : {"memory.max", "memory.high"}) {
      const std::string path = JoinPath(level.string(), file);
      if (!fs_.Exists(path)) continue;
      absl::StatusOr<uint64_t> value = ReadV2Limit(fs_, path);
      if (!value.ok()) return value.status();
      limit = std::min(limit, *value);
    }
    if (level == top || !level.has_relative_path() ||
        level.parent_path() == level) {
      break;
    }
    level = level.parent_path();
  }
  absl::StatusOr<std::string> stat = fs_.ReadFile(JoinPath(dir, "memory.stat"));
  if (!stat.ok()) return stat.status();
  const uint64_t inactive_file =
      Lookup(ParseCounters(*stat), "inactive_file", 0);
  return CgroupUsage{.used = *usage - std::min(inactive_file, *usage),
                     .limit = limit};
}

std::optional<PsiStats> HostMemoryReader::ReadPsi() const {
  if (!psi_path_.has_value()) return std::nullopt;
  absl::StatusOr<std::string> text = fs_.ReadFile(*psi_path_);
  if (!text.ok()) return std::nullopt;
  absl::StatusOr<PsiStats> psi = ParsePsi(*text);
  if (!psi.ok()) return std::nullopt;
  return *psi;
}

absl::StatusOr<HostMemoryReading> HostMemoryReader::Read() const {
  absl::StatusOr<Meminfo> meminfo = ReadMeminfo();
  if (!meminfo.ok()) return meminfo.status();
  HostMemoryReading reading{
      .used_bytes = meminfo->total - meminfo->available,
      .total_bytes = meminfo->total,
      .source = "/proc/meminfo",
      .note = "",
      .psi = ReadPsi(),
  };
  if (!cgroup_.has_value()) return reading;

  const absl::string_view version = CgroupVersionName(cgroup_->version);
  absl::StatusOr<CgroupUsage> usage = cgroup_->version == CgroupVersion::kV1
                                          ? ReadCgroupV1(*cgroup_)
                                          : ReadCgroupV2(*cgroup_);
  if (!usage.ok()) {
    reading.note =
        absl::StrCat(version, " unreadable (", usage.status().message(),
                     "); host memory used instead");
    return reading;
  }
  // v1 spells "no limit" as a page-rounded LONG_MAX; any limit at or above
  // the host's RAM cannot bind before the host runs out.
  if (usage->limit >= meminfo->total) {
    reading.note = absl::StrCat(version, " sets no limit below the host's RAM");
    return reading;
  }
  // On an overcommitted host the machine can run out before the cgroup
  // does; what the cgroup may still allocate is the smaller headroom.
  const uint64_t limit = usage->limit;
  uint64_t headroom = limit - std::min(usage->used, limit);
  if (meminfo->available < headroom) {
    headroom = meminfo->available;
    reading.note = absl::StrCat("host has less memory available than the ",
                                version, " limit leaves");
  }
  reading.used_bytes = limit - headroom;
  reading.total_bytes = limit;
  reading.source = std::string(version);
  return reading;
}

}  // namespace tensorpager::server
