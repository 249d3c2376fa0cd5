// Caps how many long-lived calls of one kind (WatchPressure streams,
// WriteBlock streams) are open, in all and per caller. Each such call holds
// one of the server's threads for its whole life, so without a cap one
// client opening streams could take every thread and starve the others.
#ifndef TENSORPAGER_SERVER_CALL_SLOTS_H_
#define TENSORPAGER_SERVER_CALL_SLOTS_H_

#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "storage/base/shared_mutex.h"

namespace tensorpager::server {

class CallSlots {
 public:
  // `what` names the calls in errors, e.g. "WatchPressure streams".
  CallSlots(std::string what, uint32_t max_total, uint32_t max_per_caller)
      : what_(std::move(what)),
        max_total_(max_total),
        max_per_caller_(max_per_caller) {}
  CallSlots(const CallSlots&) = delete;
  CallSlots& operator=(const CallSlots&) = delete;

  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& other) noexcept
        : slots_(other.slots_), caller_(std::move(other.caller_)) {
      other.slots_ = nullptr;
    }
    Slot& operator=(Slot&&) = delete;
    Slot(const Slot&) = delete;
    ~Slot();

   private:
    friend class CallSlots;
    Slot(CallSlots* slots, std::string caller)
        : slots_(slots), caller_(std::move(caller)) {}
    CallSlots* slots_ = nullptr;
    std::string caller_;
  };

  // A slot for `caller` (a user or host, see CallerOf in the service), or
  // RESOURCE_EXHAUSTED saying which cap was hit.
  absl::StatusOr<Slot> Enter(const std::string& caller);
  uint32_t open() const;

 private:
  void Leave(const std::string& caller);

  const std::string what_;
  const uint32_t max_total_;
  const uint32_t max_per_caller_;
  mutable SharedMutex mu_;
  uint32_t total_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, uint32_t> per_caller_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tensorpager::server

#endif  // TENSORPAGER_SERVER_CALL_SLOTS_H_
