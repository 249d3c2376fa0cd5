// A few worker threads running fallible tasks (the SDK's Prefetch), each
// with a future for its status. Tasks still queued at shutdown complete
// with CANCELLED.
#ifndef TENSORPAGER_CLIENT_SDK_SRC_WORK_QUEUE_H_
#define TENSORPAGER_CLIENT_SDK_SRC_WORK_QUEUE_H_

#include <deque>
#include <functional>
#include <future>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace tensorpager::internal {

class WorkQueue {
 public:
  explicit WorkQueue(int threads);
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;
  ~WorkQueue() { Shutdown(); }

  std::future<absl::Status> Submit(std::function<absl::Status()> task);
  // Waits for running tasks; cancels queued ones. Idempotent.
  void Shutdown();

 private:
  struct Task {
    std::function<absl::Status()> fn;
    std::promise<absl::Status> done;
  };

  void Work();

  absl::Mutex mu_;
  std::deque<Task> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace tensorpager::internal

#endif  // TENSORPAGER_CLIENT_SDK_SRC_WORK_QUEUE_H_
