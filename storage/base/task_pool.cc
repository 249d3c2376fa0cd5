#include "storage/base/task_pool.h"

#include <algorithm>
#include <atomic>

namespace tensorpager::base {

struct TaskPool::Batch {
  const std::function<void(size_t)>* fn;
  size_t n;
  std::atomic<size_t> next{0};
  std::mutex mu;
  std::condition_variable all_done;
  size_t done = 0;  // guarded by mu

  // Claims and runs items until none are left.
  void Drain() {
    size_t ran = 0;
    for (size_t i = next++; i < n; i = next++) {
      (*fn)(i);
      ++ran;
    }
    if (ran == 0) return;
    std::lock_guard<std::mutex> lock(mu);
    done += ran;
    if (done == n) all_done.notify_all();
  }
};

TaskPool::TaskPool(int parallelism) {
  const int helpers = std::max(parallelism, 1) - 1;
  threads_.reserve(helpers);
  for (int i = 0; i < helpers; ++i) {
    threads_.emplace_back([this] { WorkerLoop(); });
  }
}

TaskPool::~TaskPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  work_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void TaskPool::ParallelFor(size_t n, const std::function<void(size_t)>& fn) {
  if (n == 0) return;
  auto batch = std::make_shared<Batch>();
  batch->fn = &fn;
  batch->n = n;
  const size_t helpers = std::min(n - 1, threads_.size());
  if (helpers > 0) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t i = 0; i < helpers; ++i) queue_.push_back(batch);
    }
    if (helpers == 1) {
      work_.notify_one();
    } else {
      work_.notify_all();
    }
  }
  batch->Drain();
  std::unique_lock<std::mutex> lock(batch->mu);
  batch->all_done.wait(lock, [&] { return batch->done == n; });
  // Helpers that dequeue this batch later find nothing left to claim and
  // never touch fn, which dies with the caller's frame.
}

void TaskPool::WorkerLoop() {
  for (;;) {
    std::shared_ptr<Batch> batch;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      batch = std::move(queue_.front());
      queue_.pop_front();
    }
    batch->Drain();
  }
}

}  // namespace tensorpager::base
