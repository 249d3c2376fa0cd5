#include "server/metrics/registry.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/metrics/buckets.h"
#include "server/metrics/naming.h"

namespace tensorpager::metrics {

absl::StatusOr<Family<Counter>*> Registry::AddCounter(MetricSpec spec) {
  if (absl::Status s = ValidateSpec(spec, MetricType::kCounter); !s.ok()) {
    return s;
  }
  auto family =
      std::make_unique<Family<Counter>>(std::move(spec), std::vector<double>{});
  Family<Counter>* raw = family.get();
  if (absl::Status s = Insert(std::move(family)); !s.ok()) return s;
  return raw;
}

absl::StatusOr<Family<Gauge>*> Registry::AddGauge(MetricSpec spec) {
  if (absl::Status s = ValidateSpec(spec, MetricType::kGauge); !s.ok()) {
    return s;
  }
  auto family =
      std::make_unique<Family<Gauge>>(std::move(spec), std::vector<double>{});
  Family<Gauge>* raw = family.get();
  if (absl::Status s = Insert(std::move(family)); !s.ok()) return s;
  return raw;
}

absl::StatusOr<Family<Histogram>*> Registry::AddHistogram(
    MetricSpec spec, std::vector<double> bucket_bounds) {
  if (absl::Status s = ValidateSpec(spec, MetricType::kHistogram); !s.ok()) {
    return s;
  }
  absl::StatusOr<std::vector<double>> bounds =
      NormalizeBucketBounds(std::move(bucket_bounds));
  if (!bounds.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "histogram \"", spec.name, "\": ", bounds.status().message()));
  }
  auto family =
      std::make_unique<Family<Histogram>>(std::move(spec), *std::move(bounds));
  Family<Histogram>* raw = family.get();
  if (absl::Status s = Insert(std::move(family)); !s.ok()) return s;
  return raw;
}

absl::Status Registry::AddCounterCallback(MetricSpec spec, CollectFn collect) {
  return AddCallback(MetricType::kCounter, std::move(spec), std::move(collect));
}

absl::Status Registry::AddGaugeCallback(MetricSpec spec, CollectFn collect) {
  return AddCallback(MetricType::kGauge, std::move(spec), std::move(collect));
}

absl::Status Registry::AddCounterCallback(MetricSpec spec,
                                          std::function<double()> value) {
  return AddSingleValueCallback(MetricType::kCounter, std::move(spec),
                                std::move(value));
}

absl::Status Registry::AddGaugeCallback(MetricSpec spec,
                                        std::function<double()> value) {
  return AddSingleValueCallback(MetricType::kGauge, std::move(spec),
                                std::move(value));
}

absl::Status Registry::AddCallback(MetricType type, MetricSpec spec,
                                   CollectFn collect) {
  if (absl::Status s = ValidateSpec(spec, type); !s.ok()) return s;
  if (!collect) {
    return absl::InvalidArgumentError(
        absl::StrCat("metric \"", spec.name, "\": the callback is empty"));
  }
  return Insert(std::make_unique<CallbackFamily>(type, std::move(spec),
                                                 std::move(collect)));
}

absl::Status Registry::AddSingleValueCallback(MetricType type, MetricSpec spec,
                                              std::function<double()> value) {
  if (!spec.label_names.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metric \"", spec.name,
        "\" has label names, so its callback must take a SampleSink and "
        "give label values"));
  }
  if (!value) {
    return absl::InvalidArgumentError(
        absl::StrCat("metric \"", spec.name, "\": the callback is empty"));
  }
  return AddCallback(
      type, std::move(spec),
      [value = std::move(value)](SampleSink& sink) { sink.Add({}, value()); });
}

absl::Status Registry::Insert(std::unique_ptr<Collector> collector) {
  std::lock_guard lock(mu_);
  const absl::string_view name = collector->name();
  if (families_.contains(name)) {
    return absl::AlreadyExistsError(
        absl::StrCat("metric family \"", name, "\" is already registered"));
  }
  families_.emplace(std::string(name), std::move(collector));
  return absl::OkStatus();
}

absl::StatusOr<std::string> Registry::Render() const {
  std::lock_guard render_lock(render_mu_);
  // Families are never removed, so the pointers outlive the lock; copying
  // them lets callbacks run without blocking registrations.
  std::vector<const Collector*> collectors;
  {
    std::lock_guard lock(mu_);
    collectors.reserve(families_.size());
    for (const auto& [name, collector] : families_) {
      collectors.push_back(collector.get());
    }
  }
  std::string out;
  for (const Collector* collector : collectors) {
    if (absl::Status s = collector->AppendText(&out); !s.ok()) return s;
  }
  return out;
}

}  // namespace tensorpager::metrics
