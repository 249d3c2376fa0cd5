// Gives freed extents back to the allocator after punching them out of
// the data file, on a thread of its own. A punch holds the data file's
// inode lock while the drive discards (ext4 mounted with -o discard waits
// for the discard), so punching on the caller's thread made every rewrite
// wait for its old copy's discard, and every swap-out writing into the
// file wait behind it. Here a rewrite only queues its old extent;
// neighbours freed together go in one punch.
#ifndef TENSORPAGER_STORAGE_EXTENT_RECLAIMER_H_
#define TENSORPAGER_STORAGE_EXTENT_RECLAIMER_H_

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "storage/base/shared_mutex.h"
#include "storage/extent_allocator.h"
#include "storage/io_engine.h"

namespace tensorpager::storage {

class ExtentReclaimer {
 public:
  // Both must outlive the reclaimer.
  ExtentReclaimer(IoEngine* engine, ExtentAllocator* allocator);
  // Punches and frees what is still queued, then stops.
  ~ExtentReclaimer();
  ExtentReclaimer(const ExtentReclaimer&) = delete;
  ExtentReclaimer& operator=(const ExtentReclaimer&) = delete;

  // Queues the extents; they stay allocated until punched. A crash before
  // then leaves their bytes in the file until the space is reused, as a
  // crash between a record's removal and its punch always could.
  void Free(std::vector<Extent> extents);
  // Returns once every extent queued before the call is back in the
  // allocator (an allocation that found no room waits for them).
  void Drain();
  // Bytes queued or being punched: still allocated.
  uint64_t pending_bytes() const;
  // The allocator's figures with the queued extents counted as free, as
  // the store's users see them (Status right after an unregister shows
  // the space back); one consistent snapshot.
  AllocatorStats Stats() const;

 private:
  void Loop();
  // Punches the extents, sorted; their allocator frees follow under mu_.
  void Punch(std::vector<Extent>& extents);

  IoEngine* const engine_;
  ExtentAllocator* const allocator_;
  // False once the filesystem said it cannot punch holes.
  std::atomic<bool> discard_{true};
  mutable SharedMutex mu_;
  CondVar work_;  // extents queued, or stopping
  CondVar done_;  // a batch went back to the allocator
  std::vector<Extent> queue_ ABSL_GUARDED_BY(mu_);
  uint64_t pending_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t pending_extents_ ABSL_GUARDED_BY(mu_) = 0;
  // Batches handed to Free, and those back in the allocator.
  uint64_t queued_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t reclaimed_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: starts once the rest is built
};

}  // namespace tensorpager::storage

#endif  // TENSORPAGER_STORAGE_EXTENT_RECLAIMER_H_
