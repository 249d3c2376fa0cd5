// The naming rules the registry enforces at registration, so that whatever
// it exposes passes `promtool check metrics` (Prometheus' own linter) and
// the Prometheus naming conventions: lowercase snake_case, base units,
// "_total" on counters only, suffixes and labels that histograms generate
// kept for histograms.
#ifndef TENSORPAGER_SERVER_METRICS_NAMING_H_
#define TENSORPAGER_SERVER_METRICS_NAMING_H_

#include <span>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "server/metrics/metric_spec.h"

namespace tensorpager::metrics {

// INVALID_ARGUMENT naming the rule `name` breaks for a family of `type`.
absl::Status ValidateMetricName(absl::string_view name, MetricType type);

// INVALID_ARGUMENT for a malformed, reserved ("__*", "le", "quantile") or
// repeated label name.
absl::Status ValidateLabelNames(std::span<const std::string> label_names);

// INVALID_ARGUMENT for empty help text or text that is not UTF-8.
absl::Status ValidateHelp(absl::string_view help);

// All three, with the family name in the message.
absl::Status ValidateSpec(const MetricSpec& spec, MetricType type);

}  // namespace tensorpager::metrics

#endif  // TENSORPAGER_SERVER_METRICS_NAMING_H_
