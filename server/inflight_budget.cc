#include "server/inflight_budget.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace tensorpager::server {

InflightBudget::Hold& InflightBudget::Hold::operator=(Hold&& other) noexcept {
  if (this != &other) {
    Release();
    budget_ = other.budget_;
    bytes_ = other.bytes_;
    other.budget_ = nullptr;
  }
  return *this;
}

void InflightBudget::Hold::Release() {
  if (budget_ != nullptr) {
    budget_->used_.fetch_sub(bytes_, std::memory_order_relaxed);
    budget_ = nullptr;
  }
}

absl::StatusOr<InflightBudget::Hold> InflightBudget::Take(
    uint64_t bytes, absl::string_view what) {
  uint64_t used = used_.load(std::memory_order_relaxed);
  do {
    if (bytes > limit_ || used > limit_ - bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(
          what, " needs ", bytes, " bytes of staging memory, but ", used,
          " of the ", limit_,
          " bytes that writes in flight may hold (--max_inflight_bytes) are "
          "taken by other requests; retry shortly, send smaller writes or "
          "raise --max_inflight_bytes"));
    }
  } while (!used_.compare_exchange_weak(used, used + bytes,
                                        std::memory_order_relaxed));
  return Hold(this, bytes);
}

}  // namespace tensorpager::server
