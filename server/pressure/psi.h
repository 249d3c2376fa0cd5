// Linux pressure-stall information for memory (/proc/pressure/memory or a
// cgroup v2 memory.pressure file): the share of wall time in which tasks
// waited for memory. Usage ratios miss thrashing on a host whose page cache
// is being reclaimed hard; stall time shows it directly.
#ifndef TENSORPAGER_SERVER_PRESSURE_PSI_H_
#define TENSORPAGER_SERVER_PRESSURE_PSI_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/pressure/pressure_level.h"

namespace tensorpager::server {

// Percentages (0..100) averaged over 10 and 60 seconds. "some": at least
// one task stalled; "full": all non-idle tasks stalled at once.
struct PsiStats {
  double some_avg10 = 0.0;
  double some_avg60 = 0.0;
  double full_avg10 = 0.0;
  double full_avg60 = 0.0;
};

// Parses the two-line PSI format. A file without a "full" line (the CPU
// file on older kernels) leaves the full values at 0; no "some" line is
// INTERNAL.
absl::StatusOr<PsiStats> ParsePsi(absl::string_view text);

// Stall percentages that raise a resource to at least the given level; a
// value above 100 disables that rule.
struct PsiThresholds {
  double medium_some_avg10 = 10.0;
  double high_full_avg10 = 5.0;
  double critical_full_avg10 = 20.0;
};

absl::Status ValidatePsiThresholds(const PsiThresholds& thresholds);

PressureLevel LevelForPsi(const PsiStats& psi, const PsiThresholds& thresholds);

}  // namespace tensorpager::server

#endif  // TENSORPAGER_SERVER_PRESSURE_PSI_H_
