#include "storage/extent_reclaimer.h"

#include <algorithm>
#include <utility>

#include "storage/base/log.h"

namespace tensorpager::storage {

ExtentReclaimer::ExtentReclaimer(IoEngine* engine, ExtentAllocator* allocator)
    : engine_(engine), allocator_(allocator), thread_([this] { Loop(); }) {}

ExtentReclaimer::~ExtentReclaimer() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
    work_.SignalAll();
  }
  thread_.join();
}

void ExtentReclaimer::Free(std::vector<Extent> extents) {
  if (extents.empty()) return;
  MutexLock lock(&mu_);
  for (const Extent& e : extents) pending_bytes_ += e.length;
  pending_extents_ += extents.size();
  queue_.insert(queue_.end(), extents.begin(), extents.end());
  ++queued_;
  work_.Signal();
}

void ExtentReclaimer::Drain() {
  MutexLock lock(&mu_);
  const uint64_t target = queued_;
  while (reclaimed_ < target) done_.Wait(&mu_);
}

uint64_t ExtentReclaimer::pending_bytes() const {
  ReaderMutexLock lock(&mu_);
  return pending_bytes_;
}

AllocatorStats ExtentReclaimer::Stats() const {
  ReaderMutexLock lock(&mu_);
  AllocatorStats s = allocator_->Stats();
  s.used_bytes -= pending_bytes_;
  s.free_bytes += pending_bytes_;
  s.extents -= pending_extents_;
  return s;
}

void ExtentReclaimer::Loop() {
  for (;;) {
    std::vector<Extent> batch;
    uint64_t batches = 0;
    {
      MutexLock lock(&mu_);
      while (queue_.empty() && !stop_) work_.Wait(&mu_);
      if (queue_.empty()) return;  // stopping, nothing left
      batch.swap(queue_);
      batches = queued_;
    }
    Punch(batch);
    MutexLock lock(&mu_);
    // Freed under the lock, so Stats never sees an extent both free in the
    // allocator and still pending.
    for (const Extent& extent : batch) {
      if (absl::Status s = allocator_->Free(extent); !s.ok()) {
        TP_LOG(ERROR) << "extent accounting error: " << s.message();
      }
      pending_bytes_ -= extent.length;
    }
    pending_extents_ -= batch.size();
    reclaimed_ = batches;
    done_.SignalAll();
  }
}

void ExtentReclaimer::Punch(std::vector<Extent>& extents) {
  // The freed bytes leave the drive before the extents can be reused (a
  // later write into the hole allocates afresh). Neighbours go in one
  // punch.
  std::sort(
      extents.begin(), extents.end(),
      [](const Extent& a, const Extent& b) { return a.offset < b.offset; });
  for (size_t i = 0;
       i < extents.size() && discard_.load(std::memory_order_relaxed);) {
    const uint64_t begin = extents[i].offset;
    uint64_t end = begin + extents[i].length;
    for (++i; i < extents.size() && extents[i].offset == end; ++i) {
      end += extents[i].length;
    }
    absl::StatusOr<bool> punched = engine_->Discard(begin, end - begin);
    if (!punched.ok()) {
      TP_LOG(WARNING) << "could not discard a freed extent: "
                      << punched.status().message();
    } else if (!*punched) {
      discard_.store(false, std::memory_order_relaxed);
      TP_LOG(WARNING) << "the data file's filesystem cannot punch holes: "
                         "freed blocks' bytes stay in it until overwritten";
    }
  }
}

}  // namespace tensorpager::storage
