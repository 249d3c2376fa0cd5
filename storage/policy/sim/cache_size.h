// Cache sizes for tp-sim: a byte count ("64MiB", "4096") or a share of the
// trace's working set ("10%"), resolved once the trace is known.
#ifndef TENSORPAGER_STORAGE_POLICY_SIM_CACHE_SIZE_H_
#define TENSORPAGER_STORAGE_POLICY_SIM_CACHE_SIZE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tensorpager::policy::sim {

struct CacheSize {
  std::string text;  // as written, for reports
  bool is_percent = false;
  double percent = 0;  // when is_percent
  uint64_t bytes = 0;  // otherwise
};

// Accepts "N%" (0 < N <= 100, fractions allowed) or a byte count with an
// optional binary unit: B, K/KB/KiB, M/MB/MiB, G/GB/GiB, T/TB/TiB.
absl::StatusOr<CacheSize> ParseCacheSize(absl::string_view text);

// Bytes for a trace whose unique objects sum to `working_set_bytes`; a
// percentage rounds down, as libCacheSim does.
uint64_t ResolveCacheSize(const CacheSize& size, uint64_t working_set_bytes);

}  // namespace tensorpager::policy::sim

#endif  // TENSORPAGER_STORAGE_POLICY_SIM_CACHE_SIZE_H_
