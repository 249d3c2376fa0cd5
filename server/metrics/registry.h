// The set of metric families a process exposes, and their rendering in
// the Prometheus text format.
//
//   Registry registry;
//   absl::StatusOr<Family<Counter>*> requests = registry.AddCounter(
//       {.name = "tensorpager_requests_total",
//        .help = "RPCs handled, by method and status code.",
//        .label_names = {"method", "code"}});
//   Counter& access_ok = (*requests)->WithLabels({"Access", "OK"});
//   access_ok.Increment();
//   absl::StatusOr<std::string> text = registry.Render();
//
// Thread-safe: families may be added, updated and rendered from any thread.
// Families are never removed, so the pointers Add* returns stay valid for
// the registry's lifetime.
#ifndef TENSORPAGER_SERVER_METRICS_REGISTRY_H_
#define TENSORPAGER_SERVER_METRICS_REGISTRY_H_

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/metrics/buckets.h"
#include "server/metrics/callback_family.h"
#include "server/metrics/collector.h"
#include "server/metrics/counter.h"
#include "server/metrics/family.h"
#include "server/metrics/gauge.h"
#include "server/metrics/histogram.h"
#include "server/metrics/metric_spec.h"

namespace tensorpager::metrics {

class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Each Add* fails with INVALID_ARGUMENT when the spec breaks a naming
  // rule (see naming.h: counters end in "_total", lowercase snake_case,
  // base units, no reserved label names, non-empty help) and with
  // ALREADY_EXISTS when a family of that name is registered.
  absl::StatusOr<Family<Counter>*> AddCounter(MetricSpec spec);
  absl::StatusOr<Family<Gauge>*> AddGauge(MetricSpec spec);
  // `bucket_bounds`: finite and strictly increasing (a trailing +Inf is
  // allowed and implied anyway); see buckets.h for generators.
  absl::StatusOr<Family<Histogram>*> AddHistogram(
      MetricSpec spec, std::vector<double> bucket_bounds);

  // Families whose samples `collect` produces at each scrape. It runs on
  // the scraping thread, never concurrently with itself, must not call
  // Render(), and must stay callable as long as the registry may be
  // rendered: stop the metrics HTTP server before destroying what it
  // captures.
  absl::Status AddCounterCallback(MetricSpec spec, CollectFn collect);
  absl::Status AddGaugeCallback(MetricSpec spec, CollectFn collect);
  // Unlabeled shorthands: the family's single value is `value()`.
  absl::Status AddCounterCallback(MetricSpec spec,
                                  std::function<double()> value);
  absl::Status AddGaugeCallback(MetricSpec spec, std::function<double()> value);

  // Every family with samples, sorted by name; children sorted by label
  // values. INTERNAL when a callback produced samples the format cannot
  // carry (the message names the family).
  absl::StatusOr<std::string> Render() const;

 private:
  absl::Status AddCallback(MetricType type, MetricSpec spec, CollectFn collect);
  absl::Status AddSingleValueCallback(MetricType type, MetricSpec spec,
                                      std::function<double()> value);
  // ALREADY_EXISTS if the name is taken; otherwise takes ownership.
  absl::Status Insert(std::unique_ptr<Collector> collector);

  // std::mutex, not absl::Mutex: see Family.
  mutable std::mutex mu_;
  // Guarded by mu_.
  std::map<std::string, std::unique_ptr<Collector>, std::less<>> families_;
  // Serializes scrapes so that callbacks never run concurrently with
  // themselves; held without mu_, so Add* and updates never wait on a
  // scrape.
  mutable std::mutex render_mu_;
};

}  // namespace tensorpager::metrics

#endif  // TENSORPAGER_SERVER_METRICS_REGISTRY_H_
