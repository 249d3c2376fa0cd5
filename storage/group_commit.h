// Group commit for syncs: callers that arrive while a sync is in progress
// wait for the next one and share it, so N concurrent Sync() calls cost at
// most two fdatasyncs instead of N.
#ifndef TENSORPAGER_STORAGE_GROUP_COMMIT_H_
#define TENSORPAGER_STORAGE_GROUP_COMMIT_H_

#include <condition_variable>
#include <cstdint>
#include <mutex>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"

namespace tensorpager::storage {

class GroupCommit {
 public:
  // Returns once a call of `sync` that started after this call began has
  // finished, running it on this thread when no other caller is. `sync`
  // must make durable everything that completed before it started; all
  // callers must pass equivalent functions. A failure is returned to every
  // caller whose sync window saw it.
  absl::Status Sync(absl::FunctionRef<absl::Status()> sync);

  // Number of `sync` calls run so far (for tests and metrics).
  uint64_t syncs_run() const;

 private:
  // std::mutex rather than absl::Mutex throughout the I/O engines: Debian's
  // prebuilt Abseil is not built for ThreadSanitizer, which then cannot see
  // absl::Mutex hand-offs and reports them as races.
  mutable std::mutex mu_;
  std::condition_variable done_;
  // All guarded by mu_.
  uint64_t started_ = 0;
  uint64_t completed_ = 0;
  bool in_progress_ = false;
  uint64_t failed_ = 0;  // the latest failed sync
  absl::Status failure_;
};

}  // namespace tensorpager::storage

#endif  // TENSORPAGER_STORAGE_GROUP_COMMIT_H_
