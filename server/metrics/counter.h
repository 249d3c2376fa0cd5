// A monotonically increasing value: one child of a counter family.
#ifndef TENSORPAGER_SERVER_METRICS_COUNTER_H_
#define TENSORPAGER_SERVER_METRICS_COUNTER_H_

#include <atomic>
#include <cstdint>

namespace tensorpager::metrics {

// Lock-free and allocation-free. Whole-number increments take one atomic
// add; fractional ones (seconds spent, say) a compare-and-swap loop on a
// separate double, so counts stay exact up to 2^64 - 1 while fractions
// are still possible. Cache-line aligned so that two hot counters never
// share a line.
class alignas(64) Counter {
 public:
  Counter() = default;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  void Increment() { whole_.fetch_add(1, std::memory_order_relaxed); }
  void Increment(uint64_t n) { whole_.fetch_add(n, std::memory_order_relaxed); }

  // A counter never goes down: a negative or NaN delta is ignored.
  void Add(double delta) {
    if (!(delta > 0)) return;
    fraction_.fetch_add(delta, std::memory_order_relaxed);
  }

  double Value() const {
    return static_cast<double>(whole_.load(std::memory_order_relaxed)) +
           fraction_.load(std::memory_order_relaxed);
  }

 private:
  std::atomic<uint64_t> whole_{0};
  std::atomic<double> fraction_{0.0};
};

}  // namespace tensorpager::metrics

#endif  // TENSORPAGER_SERVER_METRICS_COUNTER_H_
