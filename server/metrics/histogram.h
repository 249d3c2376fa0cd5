// Observations counted into buckets: one child of a histogram family.
#ifndef TENSORPAGER_SERVER_METRICS_HISTOGRAM_H_
#define TENSORPAGER_SERVER_METRICS_HISTOGRAM_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace tensorpager::metrics {

// Observe is lock-free and allocation-free: a search over the bounds, one
// atomic add on the bucket, one compare-and-swap loop on the sum. Buckets
// are kept non-cumulative and summed at scrape time, and the count is the
// sum of the buckets, so a scrape always sees _count equal to the +Inf
// bucket; only _sum may lag an observation in flight.
class Histogram {
 public:
  // `upper_bounds`: finite and strictly increasing (see
  // NormalizeBucketBounds); the +Inf bucket is implicit. The family owns
  // the bounds and outlives its children.
  explicit Histogram(std::span<const double> upper_bounds)
      : upper_bounds_(upper_bounds),
        counts_(std::make_unique<std::atomic<uint64_t>[]>(upper_bounds.size() +
                                                          1)) {}
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  void Observe(double value) {
    // First bucket whose bound is >= value. Written as !(bound >= value)
    // rather than bound < value so that NaN lands in +Inf, as in
    // Prometheus' own clients.
    const auto it = std::partition_point(
        upper_bounds_.begin(), upper_bounds_.end(),
        [value](double bound) { return !(bound >= value); });
    counts_[it - upper_bounds_.begin()].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(value, std::memory_order_relaxed);
  }

  struct Snapshot {
    // One per upper bound, then the +Inf bucket (= the count).
    std::vector<uint64_t> cumulative_counts;
    double sum = 0;
  };
  Snapshot TakeSnapshot() const;

  std::span<const double> upper_bounds() const { return upper_bounds_; }

 private:
  const std::span<const double> upper_bounds_;
  // Per bucket, not cumulative: one add per observation.
  const std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<double> sum_{0.0};
};

}  // namespace tensorpager::metrics

#endif  // TENSORPAGER_SERVER_METRICS_HISTOGRAM_H_
