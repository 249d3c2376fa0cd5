#include "storage/base/byte_size.h"

#include <cmath>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tensorpager::base {

absl::StatusOr<uint64_t> ParseByteSize(absl::string_view text) {
  std::string s(absl::StripAsciiWhitespace(text));
  size_t split = 0;
  while (split < s.size() &&
         (absl::ascii_isdigit(static_cast<unsigned char>(s[split])) ||
          s[split] == '.')) {
    ++split;
  }
  double number = 0;
  if (split == 0 || !absl::SimpleAtod(s.substr(0, split), &number)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", text, "' is not a byte size; write e.g. 4096, 64KiB, 2GiB"));
  }
  const std::string unit =
      absl::AsciiStrToLower(absl::StripAsciiWhitespace(s.substr(split)));
  uint64_t multiplier;
  if (unit.empty() || unit == "b") {
    multiplier = 1;
  } else if (unit == "k" || unit == "kb" || unit == "kib") {
    multiplier = 1ull << 10;
  } else if (unit == "m" || unit == "mb" || unit == "mib") {
    multiplier = 1ull << 20;
  } else if (unit == "g" || unit == "gb" || unit == "gib") {
    multiplier = 1ull << 30;
  } else if (unit == "t" || unit == "tb" || unit == "tib") {
    multiplier = 1ull << 40;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "' has an unknown unit '", unit,
                     "'; use B, KiB, MiB, GiB or TiB"));
  }
  const double bytes = number * static_cast<double>(multiplier);
  if (bytes >= static_cast<double>(std::numeric_limits<uint64_t>::max())) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "' is too large"));
  }
  return static_cast<uint64_t>(std::llround(bytes));
}

std::string FormatByteSize(uint64_t bytes) {
  constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  uint64_t whole = bytes;
  while (unit < 4 && whole >= 1024 && whole % 1024 == 0) {
    whole /= 1024;
    ++unit;
  }
  if (whole < 1024 * 1024 || unit == 4)
    return absl::StrCat(whole, kUnits[unit]);
  double value = static_cast<double>(bytes);
  unit = 0;
  while (unit < 4 && value >= 1024) {
    value /= 1024;
    ++unit;
  }
  return absl::StrFormat("%.2f%s", value, kUnits[unit]);
}

bool AbslParseFlag(absl::string_view text, ByteSize* out, std::string* error) {
  absl::StatusOr<uint64_t> bytes = ParseByteSize(text);
  if (!bytes.ok()) {
    *error = std::string(bytes.status().message());
    return false;
  }
  out->bytes = *bytes;
  return true;
}

std::string AbslUnparseFlag(ByteSize size) {
  return FormatByteSize(size.bytes);
}

}  // namespace tensorpager::base
