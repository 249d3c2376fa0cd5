// One metric family as the registry sees it at scrape time.
#ifndef TENSORPAGER_SERVER_METRICS_COLLECTOR_H_
#define TENSORPAGER_SERVER_METRICS_COLLECTOR_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tensorpager::metrics {

class Collector {
 public:
  virtual ~Collector() = default;

  // The family name; unique within a registry.
  virtual absl::string_view name() const = 0;

  // Appends the family in text format (HELP, TYPE, samples), or nothing
  // when it has no samples. INTERNAL when a scrape-time callback produced
  // samples the format cannot carry.
  virtual absl::Status AppendText(std::string* out) const = 0;
};

}  // namespace tensorpager::metrics

#endif  // TENSORPAGER_SERVER_METRICS_COLLECTOR_H_
