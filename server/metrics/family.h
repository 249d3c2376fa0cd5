// A metric family with children per label-value tuple, updated by the code
// that owns the events (counters, gauges, histograms).
//
// Look a child up once, keep the reference, update it on the hot path:
//   Counter& ok = requests->WithLabels({"Access", "OK"});
//   ok.Increment();  // one relaxed atomic add, no lock, no allocation
// Children live as long as the family, which lives as long as its
// registry, so the reference stays valid.
#ifndef TENSORPAGER_SERVER_METRICS_FAMILY_H_
#define TENSORPAGER_SERVER_METRICS_FAMILY_H_

#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/metrics/collector.h"
#include "server/metrics/counter.h"
#include "server/metrics/gauge.h"
#include "server/metrics/histogram.h"
#include "server/metrics/label_values.h"
#include "server/metrics/metric_spec.h"

namespace tensorpager::metrics {

// T is Counter, Gauge or Histogram.
template <typename T>
class Family final : public Collector {
 public:
  // Made by Registry::AddCounter/AddGauge/AddHistogram, which validate the
  // spec; `bucket_bounds` (normalized) only for histograms.
  Family(MetricSpec spec, std::vector<double> bucket_bounds);
  Family(const Family&) = delete;
  Family& operator=(const Family&) = delete;

  // The child for these label values (one per label name, in order),
  // created on first use. For values fixed in the code; a wrong count is
  // a bug at the call site and aborts with the family's label names. An
  // unlabeled family's only child is WithLabels({}).
  T& WithLabels(std::initializer_list<absl::string_view> label_values);

  // The same for values that come from data (a client's namespace, say):
  // INVALID_ARGUMENT for a wrong count or a value that is not UTF-8.
  absl::StatusOr<T*> Child(std::span<const absl::string_view> label_values);

  const MetricSpec& spec() const { return spec_; }
  absl::string_view name() const override { return spec_.name; }
  absl::Status AppendText(std::string* out) const override;

 private:
  using ChildMap =
      std::map<std::vector<std::string>, std::unique_ptr<T>, LabelValuesLess>;

  std::unique_ptr<T> MakeChild() const;
  void AppendChild(const std::vector<std::string>& label_values, const T& child,
                   std::string* out) const;

  const MetricSpec spec_;
  // Histograms only: the bounds every child shares and their le="..."
  // spellings, formatted once.
  const std::vector<double> bucket_bounds_;
  const std::vector<std::string> bucket_labels_;

  // std::mutex, not absl::Mutex: Debian's Abseil is built without
  // ThreadSanitizer annotations, so TSan cannot see absl::Mutex hand-offs.
  mutable std::mutex mu_;
  ChildMap children_;  // guarded by mu_
};

extern template class Family<Counter>;
extern template class Family<Gauge>;
extern template class Family<Histogram>;

}  // namespace tensorpager::metrics

#endif  // TENSORPAGER_SERVER_METRICS_FAMILY_H_
