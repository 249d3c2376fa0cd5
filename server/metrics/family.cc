#include "server/metrics/family.h"

#include <cstdlib>
#include <type_traits>
#include <utility>

#include "server/metrics/text_format.h"
#include "storage/base/log.h"

namespace tensorpager::metrics {
namespace {

constexpr MetricType TypeOf(const Counter*) { return MetricType::kCounter; }
constexpr MetricType TypeOf(const Gauge*) { return MetricType::kGauge; }
constexpr MetricType TypeOf(const Histogram*) { return MetricType::kHistogram; }

std::vector<std::string> FormatBucketLabels(std::span<const double> bounds) {
  std::vector<std::string> labels;
  labels.reserve(bounds.size() + 1);
  for (double bound : bounds) {
    std::string text;
    AppendValue(bound, &text);
    labels.push_back(std::move(text));
  }
  labels.emplace_back("+Inf");
  return labels;
}

}  // namespace

template <typename T>
Family<T>::Family(MetricSpec spec, std::vector<double> bucket_bounds)
    : spec_(std::move(spec)),
      bucket_bounds_(std::move(bucket_bounds)),
      bucket_labels_(FormatBucketLabels(bucket_bounds_)) {
  // An unlabeled family has exactly one child; creating it now makes the
  // metric visible (as 0) before its first update.
  if (spec_.label_names.empty()) {
    std::lock_guard lock(mu_);
    children_.emplace(std::vector<std::string>{}, MakeChild());
  }
}

template <typename T>
std::unique_ptr<T> Family<T>::MakeChild() const {
  if constexpr (std::is_same_v<T, Histogram>) {
    return std::make_unique<Histogram>(bucket_bounds_);
  } else {
    return std::make_unique<T>();
  }
}

template <typename T>
T& Family<T>::WithLabels(
    std::initializer_list<absl::string_view> label_values) {
  absl::StatusOr<T*> child = Child(std::span<const absl::string_view>(
      label_values.begin(), label_values.size()));
  if (!child.ok()) {
    TP_LOG(ERROR) << "metrics: " << child.status().message();
    std::abort();
  }
  return **child;
}

template <typename T>
absl::StatusOr<T*> Family<T>::Child(
    std::span<const absl::string_view> label_values) {
  if (absl::Status s =
          ValidateLabelValues(spec_.name, spec_.label_names, label_values);
      !s.ok()) {
    return s;
  }
  std::lock_guard lock(mu_);
  auto it = children_.find(label_values);
  if (it == children_.end()) {
    it = children_
             .emplace(std::vector<std::string>(label_values.begin(),
                                               label_values.end()),
                      MakeChild())
             .first;
  }
  return it->second.get();
}

template <typename T>
absl::Status Family<T>::AppendText(std::string* out) const {
  std::lock_guard lock(mu_);
  if (children_.empty()) return absl::OkStatus();
  AppendFamilyHeader(spec_.name, spec_.help, TypeOf(static_cast<T*>(nullptr)),
                     out);
  for (const auto& [label_values, child] : children_) {
    AppendChild(label_values, *child, out);
  }
  return absl::OkStatus();
}

template <typename T>
void Family<T>::AppendChild(const std::vector<std::string>& label_values,
                            const T& child, std::string* out) const {
  if constexpr (std::is_same_v<T, Histogram>) {
    const Histogram::Snapshot snapshot = child.TakeSnapshot();
    for (size_t i = 0; i < snapshot.cumulative_counts.size(); ++i) {
      AppendSample(spec_.name, "_bucket", spec_.label_names, label_values,
                   bucket_labels_[i],
                   static_cast<double>(snapshot.cumulative_counts[i]), out);
    }
    AppendSample(spec_.name, "_sum", spec_.label_names, label_values, "",
                 snapshot.sum, out);
    AppendSample(spec_.name, "_count", spec_.label_names, label_values, "",
                 static_cast<double>(snapshot.cumulative_counts.back()), out);
  } else {
    AppendSample(spec_.name, "", spec_.label_names, label_values, "",
                 child.Value(), out);
  }
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

}  // namespace tensorpager::metrics
