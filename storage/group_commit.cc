#include "storage/group_commit.h"

#include <utility>

namespace tensorpager::storage {

absl::Status GroupCommit::Sync(absl::FunctionRef<absl::Status()> sync) {
  std::unique_lock lock(mu_);
  // A sync already running may have started before this caller's writes
  // completed, so only the next one to start is known to cover them.
  const uint64_t needed = started_ + 1;
  while (completed_ < needed) {
    if (in_progress_) {
      done_.wait(lock);
      continue;
    }
    // Nothing running and `needed` not done: started_ == needed - 1, so the
    // sync started here is `needed` itself.
    in_progress_ = true;
    const uint64_t mine = ++started_;
    lock.unlock();
    absl::Status s = sync();
    lock.lock();
    in_progress_ = false;
    completed_ = mine;
    if (!s.ok()) {
      failed_ = mine;
      failure_ = std::move(s);
    }
    done_.notify_all();
  }
  return failed_ >= needed ? failure_ : absl::OkStatus();
}

uint64_t GroupCommit::syncs_run() const {
  std::lock_guard lock(mu_);
  return completed_;
}

}  // namespace tensorpager::storage
