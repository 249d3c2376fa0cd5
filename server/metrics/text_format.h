// Prometheus text exposition format 0.0.4: the pieces every family writes.
// https://prometheus.io/docs/instrumenting/exposition_formats/
#ifndef TENSORPAGER_SERVER_METRICS_TEXT_FORMAT_H_
#define TENSORPAGER_SERVER_METRICS_TEXT_FORMAT_H_

#include <cstdint>
#include <span>
#include <string>

#include "absl/strings/string_view.h"
#include "server/metrics/metric_spec.h"

namespace tensorpager::metrics {

// The Content-Type a scrape response carries.
inline constexpr absl::string_view kTextFormatContentType =
    "text/plain; version=0.0.4; charset=utf-8";

// The format is UTF-8; label values and help text are checked with this.
bool IsValidUtf8(absl::string_view text);

// HELP text escapes '\' and newline.
void AppendEscapedHelp(absl::string_view help, std::string* out);

// Label values escape '\', '"' and newline.
void AppendEscapedLabelValue(absl::string_view value, std::string* out);

// Shortest text that parses back to the same double; "+Inf", "-Inf" and
// "NaN" for the special values, as Prometheus' parser spells them.
void AppendValue(double value, std::string* out);

// "# HELP <name> <help>\n# TYPE <name> <type>\n".
void AppendFamilyHeader(absl::string_view name, absl::string_view help,
                        MetricType type, std::string* out);

// One sample line: <name><suffix>{<labels>[,le="<le>"]} <value>\n. The
// braces are left out when there are no labels; `le` is empty except on
// histogram buckets. `label_values` pairs with `label_names` by position.
void AppendSample(absl::string_view name, absl::string_view suffix,
                  std::span<const std::string> label_names,
                  std::span<const std::string> label_values,
                  absl::string_view le, double value, std::string* out);

}  // namespace tensorpager::metrics

#endif  // TENSORPAGER_SERVER_METRICS_TEXT_FORMAT_H_
