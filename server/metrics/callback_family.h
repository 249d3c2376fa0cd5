// A counter or gauge family whose samples a function produces at scrape
// time, for values the service already keeps (tier sizes, pressure
// levels), so they need no second bookkeeping:
//   registry.AddGaugeCallback(
//       {.name = "tensorpager_tier_used_bytes", .help = "...",
//        .label_names = {"tier"}},
//       [store](SampleSink& sink) {
//         sink.Add({"ram"}, store->RamBytes());
//         sink.Add({"nvme"}, store->NvmeBytes());
//       });
#ifndef TENSORPAGER_SERVER_METRICS_CALLBACK_FAMILY_H_
#define TENSORPAGER_SERVER_METRICS_CALLBACK_FAMILY_H_

#include <functional>
#include <initializer_list>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "server/metrics/collector.h"
#include "server/metrics/metric_spec.h"

namespace tensorpager::metrics {

// Receives one scrape's samples from a callback.
class SampleSink {
 public:
  // One value per label name of the family, in order.
  void Add(std::initializer_list<absl::string_view> label_values,
           double value) {
    Add(std::span<const absl::string_view>(label_values.begin(),
                                           label_values.size()),
        value);
  }
  void Add(std::span<const absl::string_view> label_values, double value);

 private:
  friend class CallbackFamily;
  struct Sample {
    std::vector<std::string> label_values;
    double value;
  };
  std::vector<Sample> samples_;
};

using CollectFn = std::function<void(SampleSink&)>;

class CallbackFamily final : public Collector {
 public:
  // Made by Registry::AddCounterCallback/AddGaugeCallback, which validate
  // the spec. `type` is kCounter or kGauge.
  CallbackFamily(MetricType type, MetricSpec spec, CollectFn collect);

  absl::string_view name() const override { return spec_.name; }

  // Runs the callback, checks its samples and appends them sorted by label
  // values. INTERNAL, naming the family, when a sample has the wrong
  // number of label values or non-UTF-8 ones, when two samples share
  // label values, or when a counter value is negative or NaN: the
  // callback has a bug, and a scrape that reported it wrongly would hide
  // it.
  absl::Status AppendText(std::string* out) const override;

 private:
  const MetricType type_;
  const MetricSpec spec_;
  const CollectFn collect_;
};

}  // namespace tensorpager::metrics

#endif  // TENSORPAGER_SERVER_METRICS_CALLBACK_FAMILY_H_
