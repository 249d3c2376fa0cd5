#include "client_sdk/src/work_queue.h"

namespace tensorpager::internal {

WorkQueue::WorkQueue(int threads) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Work(); });
}

std::future<absl::Status> WorkQueue::Submit(
    std::function<absl::Status()> task) {
  Task t{std::move(task), {}};
  std::future<absl::Status> f = t.done.get_future();
  absl::MutexLock lock(&mu_);
  if (stopping_) {
    t.done.set_value(absl::CancelledError("the client is shutting down"));
  } else {
    tasks_.push_back(std::move(t));
  }
  return f;
}

void WorkQueue::Work() {
  for (;;) {
    Task t;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !tasks_.empty();
      };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      t = std::move(tasks_.front());
      tasks_.pop_front();
    }
    t.done.set_value(t.fn());
  }
}

void WorkQueue::Shutdown() {
  std::deque<Task> cancelled;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    cancelled.swap(tasks_);
  }
  for (Task& t : cancelled) {
    t.done.set_value(absl::CancelledError("the client shut down first"));
  }
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

}  // namespace tensorpager::internal
