// A value that goes up and down: one child of a gauge family.
#ifndef TENSORPAGER_SERVER_METRICS_GAUGE_H_
#define TENSORPAGER_SERVER_METRICS_GAUGE_H_

#include <atomic>

namespace tensorpager::metrics {

// Lock-free and allocation-free; Add/Sub are a compare-and-swap loop on
// the double. Cache-line aligned like Counter.
class alignas(64) Gauge {
 public:
  Gauge() = default;
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Add(double delta) { value_.fetch_add(delta, std::memory_order_relaxed); }
  void Sub(double delta) { value_.fetch_sub(delta, std::memory_order_relaxed); }
  void Increment() { Add(1.0); }
  void Decrement() { Sub(1.0); }

  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

}  // namespace tensorpager::metrics

#endif  // TENSORPAGER_SERVER_METRICS_GAUGE_H_
