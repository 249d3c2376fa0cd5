#include "server/metrics/label_values.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/metrics/text_format.h"

namespace tensorpager::metrics {

absl::Status ValidateLabelValues(absl::string_view family,
                                 std::span<const std::string> label_names,
                                 std::span<const absl::string_view> values) {
  if (values.size() != label_names.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metric \"", family, "\" takes ", label_names.size(), " label values (",
        absl::StrJoin(label_names, ", "), "), got ", values.size()));
  }
  for (size_t i = 0; i < values.size(); ++i) {
    if (!IsValidUtf8(values[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("metric \"", family, "\": value of label \"",
                       label_names[i], "\" is not valid UTF-8"));
    }
  }
  return absl::OkStatus();
}

}  // namespace tensorpager::metrics
