// Bytes the service holds for requests in flight: the staging buffers of
// writes being received (WriteBlock streams, shared-memory writes) before
// the store takes them into the RAM tier. They live outside the RAM
// tier's budget, so they get a cap of their own; a request that would go
// over it fails at once with RESOURCE_EXHAUSTED instead of growing the
// process without bound while a client stalls its stream.
#ifndef TENSORPAGER_SERVER_INFLIGHT_BUDGET_H_
#define TENSORPAGER_SERVER_INFLIGHT_BUDGET_H_

#include <atomic>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tensorpager::server {

class InflightBudget {
 public:
  explicit InflightBudget(uint64_t limit_bytes) : limit_(limit_bytes) {}
  InflightBudget(const InflightBudget&) = delete;
  InflightBudget& operator=(const InflightBudget&) = delete;

  // Bytes taken from the budget, given back when the hold goes.
  class Hold {
   public:
    Hold() = default;
    Hold(Hold&& other) noexcept : budget_(other.budget_), bytes_(other.bytes_) {
      other.budget_ = nullptr;
    }
    Hold& operator=(Hold&& other) noexcept;
    Hold(const Hold&) = delete;
    Hold& operator=(const Hold&) = delete;
    ~Hold() { Release(); }
    uint64_t bytes() const { return bytes_; }

   private:
    friend class InflightBudget;
    Hold(InflightBudget* budget, uint64_t bytes)
        : budget_(budget), bytes_(bytes) {}
    void Release();
    InflightBudget* budget_ = nullptr;
    uint64_t bytes_ = 0;
  };

  // RESOURCE_EXHAUSTED (naming `what` and the limit) when `bytes` more
  // would exceed the limit.
  absl::StatusOr<Hold> Take(uint64_t bytes, absl::string_view what);

  uint64_t used() const { return used_.load(std::memory_order_relaxed); }
  uint64_t limit() const { return limit_; }

 private:
  const uint64_t limit_;
  std::atomic<uint64_t> used_{0};
};

}  // namespace tensorpager::server

#endif  // TENSORPAGER_SERVER_INFLIGHT_BUDGET_H_
