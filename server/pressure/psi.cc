#include "server/pressure/psi.h"

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace tensorpager::server {
namespace {

// Fills avg10/avg60 from "some avg10=0.00 avg60=0.00 avg300=0.00 total=0".
bool ParseLine(absl::string_view line, double* avg10, double* avg60) {
  bool got10 = false;
  bool got60 = false;
  std::vector<absl::string_view> fields =
      absl::StrSplit(line, ' ', absl::SkipEmpty());
  for (size_t i = 1; i < fields.size(); ++i) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(fields[i], absl::MaxSplits('=', 1));
    if (kv.first == "avg10") got10 = absl::SimpleAtod(kv.second, avg10);
    if (kv.first == "avg60") got60 = absl::SimpleAtod(kv.second, avg60);
  }
  return got10 && got60;
}

}  // namespace

absl::StatusOr<PsiStats> ParsePsi(absl::string_view text) {
  PsiStats stats;
  bool have_some = false;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StartsWith(line, "some ")) {
      have_some = ParseLine(line, &stats.some_avg10, &stats.some_avg60);
    } else if (absl::StartsWith(line, "full ")) {
      if (!ParseLine(line, &stats.full_avg10, &stats.full_avg60)) {
        return absl::InternalError(
            absl::StrCat("PSI \"full\" line lacks avg10/avg60: ", line));
      }
    }
  }
  if (!have_some) {
    return absl::InternalError(
        "PSI data has no \"some avg10=.. avg60=..\" line");
  }
  return stats;
}

absl::Status ValidatePsiThresholds(const PsiThresholds& thresholds) {
  for (double value : {thresholds.medium_some_avg10, thresholds.high_full_avg10,
                       thresholds.critical_full_avg10}) {
    if (!(value > 0.0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("PSI thresholds must be positive percentages (above 100 "
                       "disables a rule), got ",
                       value));
    }
  }
  return absl::OkStatus();
}

PressureLevel LevelForPsi(const PsiStats& psi,
                          const PsiThresholds& thresholds) {
  if (psi.full_avg10 >= thresholds.critical_full_avg10) {
    return PressureLevel::kCritical;
  }
  if (psi.full_avg10 >= thresholds.high_full_avg10) {
    return PressureLevel::kHigh;
  }
  if (psi.some_avg10 >= thresholds.medium_some_avg10) {
    return PressureLevel::kMedium;
  }
  return PressureLevel::kLow;
}

}  // namespace tensorpager::server
