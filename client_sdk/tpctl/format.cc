#include "client_sdk/tpctl/format.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"

namespace tensorpager::tpctl {
namespace {

std::string Lower(absl::string_view name, absl::string_view prefix) {
  absl::ConsumePrefix(&name, prefix);
  return absl::AsciiStrToLower(name);
}

}  // namespace

std::string HumanBytes(uint64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  double value = static_cast<double>(bytes) / 1024;
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  // Three significant digits: 1.50, 12.0, 512.
  const int decimals = value < 10 ? 2 : value < 100 ? 1 : 0;
  return absl::StrFormat("%.*f %s", decimals, value, kUnits[unit]);
}

std::string Percent(double ratio) {
  return absl::StrFormat("%.1f%%", ratio * 100);
}

std::string HumanDuration(int64_t seconds) {
  if (seconds < 0) seconds = 0;
  if (seconds < 60) return absl::StrCat(seconds, "s");
  if (seconds < 3600) {
    return absl::StrFormat("%dm%02ds", seconds / 60, seconds % 60);
  }
  if (seconds < 86400) {
    return absl::StrFormat("%dh%02dm", seconds / 3600, seconds % 3600 / 60);
  }
  return absl::StrFormat("%dd%02dh", seconds / 86400, seconds % 86400 / 3600);
}

std::string Ago(int64_t unix_ms, absl::Time now) {
  if (unix_ms <= 0) return "-";
  const int64_t seconds =
      absl::ToInt64Seconds(now - absl::FromUnixMillis(unix_ms));
  return absl::StrCat(HumanDuration(seconds), " ago");
}

std::string Millis(double ms) { return absl::StrFormat("%.2f ms", ms); }

std::string TierName(v1::Tier tier) {
  if (tier == v1::TIER_RAM_AND_DISK) return "ram+disk";
  return Lower(v1::Tier_Name(tier), "TIER_");
}

std::string RegionTypeName(v1::RegionType type) {
  return Lower(v1::RegionType_Name(type), "");
}

std::string DTypeName(v1::DType dtype) {
  return Lower(v1::DType_Name(dtype), "");
}

std::string PressureLevelName(v1::PressureLevel level) {
  if (level == v1::PRESSURE_LEVEL_UNSPECIFIED) return "-";
  return Lower(v1::PressureLevel_Name(level), "");
}

std::string AlgorithmName(v1::Algorithm algorithm) {
  return Lower(v1::Algorithm_Name(algorithm), "");
}

}  // namespace tensorpager::tpctl
