// Label-value tuples: the key of a family's children.
#ifndef TENSORPAGER_SERVER_METRICS_LABEL_VALUES_H_
#define TENSORPAGER_SERVER_METRICS_LABEL_VALUES_H_

#include <algorithm>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tensorpager::metrics {

// Orders tuples lexicographically (the scrape order of a family's
// children) and compares an owned tuple with a borrowed one, so a lookup
// needs no allocation.
struct LabelValuesLess {
  using is_transparent = void;

  template <typename A, typename B>
  bool operator()(const A& a, const B& b) const {
    return std::lexicographical_compare(
        a.begin(), a.end(), b.begin(), b.end(),
        [](absl::string_view x, absl::string_view y) { return x < y; });
  }
};

// INVALID_ARGUMENT unless there is one value per label name and every
// value is UTF-8. `family` names the family in the message.
absl::Status ValidateLabelValues(absl::string_view family,
                                 std::span<const std::string> label_names,
                                 std::span<const absl::string_view> values);

}  // namespace tensorpager::metrics

#endif  // TENSORPAGER_SERVER_METRICS_LABEL_VALUES_H_
