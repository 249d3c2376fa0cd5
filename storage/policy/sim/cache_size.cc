#include "storage/policy/sim/cache_size.h"

#include <cmath>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace tensorpager::policy::sim {

absl::StatusOr<CacheSize> ParseCacheSize(absl::string_view text) {
  const absl::string_view s = absl::StripAsciiWhitespace(text);
  CacheSize size;
  size.text = std::string(s);
  if (!s.empty() && s.back() == '%') {
    double percent;
    if (!absl::SimpleAtod(s.substr(0, s.size() - 1), &percent) ||
        !(percent > 0) || percent > 100) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cache size '", text, "' is not a percentage in (0%, 100%]"));
    }
    size.is_percent = true;
    size.percent = percent;
    return size;
  }
  size_t split = 0;
  while (split < s.size() &&
         (absl::ascii_isdigit(static_cast<unsigned char>(s[split])) ||
          s[split] == '.')) {
    ++split;
  }
  double number;
  if (split == 0 || !absl::SimpleAtod(s.substr(0, split), &number)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cache size '", text,
                     "' is neither a byte count (4096, 64MiB) nor a "
                     "percentage of the working set (10%)"));
  }
  const std::string unit =
      absl::AsciiStrToLower(absl::StripAsciiWhitespace(s.substr(split)));
  double multiplier;
  if (unit.empty() || unit == "b") {
    multiplier = 1;
  } else if (unit == "k" || unit == "kb" || unit == "kib") {
    multiplier = 0x1p10;
  } else if (unit == "m" || unit == "mb" || unit == "mib") {
    multiplier = 0x1p20;
  } else if (unit == "g" || unit == "gb" || unit == "gib") {
    multiplier = 0x1p30;
  } else if (unit == "t" || unit == "tb" || unit == "tib") {
    multiplier = 0x1p40;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("cache size '", text, "' has an unknown unit '", unit,
                     "'; use B, KiB, MiB, GiB, TiB or %"));
  }
  const double bytes = std::floor(number * multiplier);
  if (bytes < 1 ||
      bytes >= static_cast<double>(std::numeric_limits<uint64_t>::max())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cache size '", text, "' must be at least 1 byte and below 16 EiB"));
  }
  size.bytes = static_cast<uint64_t>(bytes);
  return size;
}

uint64_t ResolveCacheSize(const CacheSize& size, uint64_t working_set_bytes) {
  if (!size.is_percent) return size.bytes;
  return static_cast<uint64_t>(static_cast<double>(working_set_bytes) *
                               size.percent / 100.0);
}

}  // namespace tensorpager::policy::sim
