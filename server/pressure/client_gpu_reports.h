// GPU memory usage reported by SDK clients. A client that runs CUDA sees
// its devices even where the server cannot (no NVIDIA driver libraries in
// the server's container), so its reports stand in for NVML. Reports expire:
// a crashed client must not hold a device at HIGH forever.
#ifndef TENSORPAGER_SERVER_PRESSURE_CLIENT_GPU_REPORTS_H_
#define TENSORPAGER_SERVER_PRESSURE_CLIENT_GPU_REPORTS_H_

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace tensorpager::server {

// The freshest view of one device across all clients that report it.
struct ReportedGpu {
  uint32_t device = 0;
  // Device-wide figures (cudaMemGetInfo), so clients sharing a device report
  // the same memory: the largest used figure is the current worst case.
  uint64_t used_bytes = 0;
  uint64_t total_bytes = 0;
  size_t clients = 0;
  absl::Time newest_report;
};

class ClientGpuReports {
 public:
  // Reports older than `ttl` are ignored and dropped; at most `max_reports`
  // (client, device) pairs are kept.
  ClientGpuReports(absl::Duration ttl, size_t max_reports);

  // INVALID_ARGUMENT for an empty client id, total 0 or used > total;
  // RESOURCE_EXHAUSTED when max_reports live pairs exist already (after
  // dropping expired ones). A new report replaces the client's previous
  // one for that device.
  absl::Status Report(absl::string_view client_id, uint32_t device,
                      uint64_t used_bytes, uint64_t total_bytes,
                      absl::Time now);

  // Drops every report of a client (it disconnected cleanly).
  void Forget(absl::string_view client_id);

  // Live devices in index order; expired reports are removed.
  std::vector<ReportedGpu> Current(absl::Time now);

 private:
  struct Entry {
    uint64_t used_bytes = 0;
    uint64_t total_bytes = 0;
    absl::Time time;
  };
  using Key = std::pair<std::string, uint32_t>;

  void ExpireLocked(absl::Time now);  // requires mu_

  const absl::Duration ttl_;
  const size_t max_reports_;
  // std::mutex: see PressureMonitor (ThreadSanitizer cannot see Debian's
  // absl::Mutex).
  std::mutex mu_;
  absl::flat_hash_map<Key, Entry> reports_;  // guarded by mu_
};

}  // namespace tensorpager::server

#endif  // TENSORPAGER_SERVER_PRESSURE_CLIENT_GPU_REPORTS_H_
