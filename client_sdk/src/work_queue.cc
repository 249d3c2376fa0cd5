#include "client_sdk/src/work_queue.h"

namespace tensorpager::internal {

WorkQueue::WorkQueue(int threads) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Work(); });
}

std::future<absl::Status> WorkQueue::Submit(
    std::function<absl::Status()> task) {
  Task t{std::move(task), {}};
  std::future<absl::Status> f = t.done.get_future();
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) {
    t.done.set_value(absl::CancelledError("the client is shutting down"));
  } else {
    tasks_.push_back(std::move(t));
    wake_.notify_one();
  }
  return f;
}

void WorkQueue::Work() {
  for (;;) {
    Task t;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
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
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    cancelled.swap(tasks_);
    wake_.notify_all();
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
