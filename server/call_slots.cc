#include "server/call_slots.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace tensorpager::server {

CallSlots::Slot::~Slot() {
  if (slots_ != nullptr) slots_->Leave(caller_);
}

absl::StatusOr<CallSlots::Slot> CallSlots::Enter(const std::string& caller) {
  MutexLock lock(&mu_);
  if (total_ >= max_total_) {
    return absl::ResourceExhaustedError(
        absl::StrCat(total_, " ", what_,
                     " are open, the most the server "
                     "allows; close unused ones and retry"));
  }
  uint32_t& mine = per_caller_[caller];
  if (mine >= max_per_caller_) {
    return absl::ResourceExhaustedError(
        absl::StrCat(caller, " has ", mine, " ", what_,
                     " open, the most one caller may; close unused ones "
                     "and retry"));
  }
  ++mine;
  ++total_;
  return Slot(this, caller);
}

void CallSlots::Leave(const std::string& caller) {
  MutexLock lock(&mu_);
  --total_;
  auto it = per_caller_.find(caller);
  if (--it->second == 0) per_caller_.erase(it);
}

uint32_t CallSlots::open() const {
  ReaderMutexLock lock(&mu_);
  return total_;
}

}  // namespace tensorpager::server
