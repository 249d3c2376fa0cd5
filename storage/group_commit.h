// Group commit for syncs: callers that arrive while a sync is in progress
// wait for the next one and share it, so N concurrent Sync() calls cost at
// most two fdatasyncs instead of N.
#ifndef TENSORPAGER_STORAGE_GROUP_COMMIT_H_
#define TENSORPAGER_STORAGE_GROUP_COMMIT_H_

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace tensorpager::storage {

class GroupCommit {
 public:
  // Returns once a call of `sync` that started after this call began has
  // finished, running it on this thread when no other caller is. `sync`
  // must make durable everything that completed before it started; all
  // callers must pass equivalent functions. A failure is returned to every
  // caller whose sync window saw it.
  absl::Status Sync(absl::FunctionRef<absl::Status()> sync)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Number of `sync` calls run so far (for tests and metrics).
  uint64_t syncs_run() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable absl::Mutex mu_;
  absl::CondVar done_;
  uint64_t started_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t completed_ ABSL_GUARDED_BY(mu_) = 0;
  bool in_progress_ ABSL_GUARDED_BY(mu_) = false;
  // The latest failed sync and its status.
  uint64_t failed_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status failure_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tensorpager::storage

#endif  // TENSORPAGER_STORAGE_GROUP_COMMIT_H_
