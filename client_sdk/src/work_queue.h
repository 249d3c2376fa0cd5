// A few worker threads running fallible tasks (the SDK's Prefetch), each
// with a future for its status. Tasks still queued at shutdown complete
// with CANCELLED.
#ifndef TENSORPAGER_CLIENT_SDK_SRC_WORK_QUEUE_H_
#define TENSORPAGER_CLIENT_SDK_SRC_WORK_QUEUE_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/status.h"

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

  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Task> tasks_;  // guarded by mu_
  bool stopping_ = false;   // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace tensorpager::internal

#endif  // TENSORPAGER_CLIENT_SDK_SRC_WORK_QUEUE_H_
