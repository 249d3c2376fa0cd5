#include "server/policy_thread.h"

#include "storage/base/allocator_tuning.h"
#include "storage/base/byte_size.h"
#include "storage/base/log.h"

namespace tensorpager::server {

using base::FormatByteSize;

PolicyThread::PolicyThread(storage::BlockStore* store, Options options)
    : store_(store), options_(options), thread_([this] { Run(); }) {}

PolicyThread::~PolicyThread() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
    wakeup_.SignalAll();
  }
  thread_.join();
}

void PolicyThread::Wake() {
  MutexLock lock(&mu_);
  wake_ = true;
  wakeup_.SignalAll();
}

void PolicyThread::Run() {
  absl::Time next_trim = absl::Now() + kHeapTrimInterval;
  for (;;) {
    {
      MutexLock lock(&mu_);
      const absl::Time deadline = absl::Now() + options_.interval;
      while (!ShouldRun()) {
        const absl::Duration left = deadline - absl::Now();
        if (left <= absl::ZeroDuration()) break;
        wakeup_.WaitWithTimeout(&mu_, left);
      }
      if (stop_) return;
      wake_ = false;
    }
    CheckOnce();
    if (absl::Now() >= next_trim) {
      // Freed staging and message buffers stay in the heap (see
      // allocator_tuning.h): hand what is free back now and then, so the
      // server's memory follows what it holds instead of its peak.
      base::ReturnFreeHeapPages(kHeapTrimKeepBytes);
      next_trim = absl::Now() + kHeapTrimInterval;
    }
  }
}

void PolicyThread::CheckOnce() {
  const storage::StoreStats s = store_->Stats();
  const double budget = static_cast<double>(s.ram_budget_bytes);
  if (s.ram_bytes <= options_.swap_threshold * budget) return;
  const auto target = static_cast<uint64_t>(options_.swap_target * budget);
  absl::StatusOr<storage::SwapResult> r = store_->ShrinkRamTo(target);
  if (!r.ok()) {
    TP_LOG(WARNING) << "policy: RAM tier at " << FormatByteSize(s.ram_bytes)
                    << " of " << FormatByteSize(s.ram_budget_bytes)
                    << ", background swap-out failed: " << r.status().message();
    return;
  }
  // Writers wake this thread each time they pass the threshold, so
  // under a steady stream of new blocks it swaps out many times a second:
  // one line per kLogInterval sums them up.
  logged_.blocks += r->moved.size();
  logged_.bytes += r->bytes_moved;
  logged_.time += r->duration;
  ++logged_.rounds;
  const absl::Time now = absl::Now();
  if (logged_.blocks > 0 && now >= logged_.next) {
    TP_LOG(INFO) << "policy: RAM tier crossed "
                 << static_cast<int>(options_.swap_threshold * 100)
                 << "% of its budget; swapped out " << logged_.blocks
                 << " blocks (" << FormatByteSize(logged_.bytes) << ") in "
                 << logged_.rounds << " rounds taking "
                 << absl::FormatDuration(logged_.time);
    logged_ = Logged{.next = now + kLogInterval};
  }
}

}  // namespace tensorpager::server
