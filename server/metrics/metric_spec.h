// What a metric family is: its type, name, help text and label names.
#ifndef TENSORPAGER_SERVER_METRICS_METRIC_SPEC_H_
#define TENSORPAGER_SERVER_METRICS_METRIC_SPEC_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace tensorpager::metrics {

enum class MetricType { kCounter, kGauge, kHistogram };

// The word the text format's TYPE line uses.
constexpr absl::string_view MetricTypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// Written with designated initializers at the registration site:
//   registry.AddCounter({.name = "tensorpager_requests_total",
//                        .help = "RPCs handled.",
//                        .label_names = {"method", "code"}});
// (The empty initializers let a designated initializer leave a field out
// under -Wextra.)
struct MetricSpec {
  std::string name = {};
  std::string help = {};
  // Fixed for the family's lifetime; every child gives one value per name,
  // in this order.
  std::vector<std::string> label_names = {};
};

}  // namespace tensorpager::metrics

#endif  // TENSORPAGER_SERVER_METRICS_METRIC_SPEC_H_
