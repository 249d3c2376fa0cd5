#include "server/pressure/client_gpu_reports.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"

namespace tensorpager::server {

ClientGpuReports::ClientGpuReports(absl::Duration ttl, size_t max_reports)
    : ttl_(ttl), max_reports_(max_reports) {}

absl::Status ClientGpuReports::Report(absl::string_view client_id,
                                      uint32_t device, uint64_t used_bytes,
                                      uint64_t total_bytes, absl::Time now) {
  if (client_id.empty()) {
    return absl::InvalidArgumentError("GPU usage report needs a client id");
  }
  if (total_bytes == 0 || used_bytes > total_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "GPU usage report for gpu", device, " from ", client_id,
        ": need 0 < total and used <= total, got used=", used_bytes,
        " total=", total_bytes));
  }
  std::lock_guard lock(mu_);
  Key key(std::string(client_id), device);
  auto it = reports_.find(key);
  if (it == reports_.end()) {
    ExpireLocked(now);
    if (reports_.size() >= max_reports_) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "already tracking ", max_reports_,
          " (client, GPU) usage reports; retry after stale ones expire (",
          absl::FormatDuration(ttl_), ")"));
    }
    it = reports_.emplace(std::move(key), Entry{}).first;
  }
  it->second =
      Entry{.used_bytes = used_bytes, .total_bytes = total_bytes, .time = now};
  return absl::OkStatus();
}

void ClientGpuReports::Forget(absl::string_view client_id) {
  std::lock_guard lock(mu_);
  absl::erase_if(reports_, [client_id](const auto& entry) {
    return entry.first.first == client_id;
  });
}

std::vector<ReportedGpu> ClientGpuReports::Current(absl::Time now) {
  std::lock_guard lock(mu_);
  ExpireLocked(now);
  std::map<uint32_t, ReportedGpu> by_device;
  for (const auto& [key, entry] : reports_) {
    ReportedGpu& gpu = by_device[key.second];
    gpu.device = key.second;
    gpu.used_bytes = std::max(gpu.used_bytes, entry.used_bytes);
    gpu.total_bytes = std::max(gpu.total_bytes, entry.total_bytes);
    gpu.newest_report =
        gpu.clients == 0 ? entry.time : std::max(gpu.newest_report, entry.time);
    ++gpu.clients;
  }
  std::vector<ReportedGpu> gpus;
  gpus.reserve(by_device.size());
  for (auto& [device, gpu] : by_device) gpus.push_back(gpu);
  return gpus;
}

void ClientGpuReports::ExpireLocked(absl::Time now) {
  absl::erase_if(reports_, [this, now](const auto& entry) {
    return now - entry.second.time > ttl_;
  });
}

}  // namespace tensorpager::server
