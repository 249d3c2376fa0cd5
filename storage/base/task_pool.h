// A fixed set of threads that run the parts of one operation side by side:
// the victims of one eviction (compressed and written concurrently) or the
// blocks of one swap-in. The caller works too, so a ParallelFor always makes
// progress even when every pool thread is busy with another caller's work
// (which is what makes nested use, an eviction inside a swap-in, safe).
#ifndef TENSORPAGER_STORAGE_BASE_TASK_POOL_H_
#define TENSORPAGER_STORAGE_BASE_TASK_POOL_H_

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace tensorpager::base {

class TaskPool {
 public:
  // `parallelism` counts the caller: 1 runs everything on the caller.
  explicit TaskPool(int parallelism);
  ~TaskPool();
  TaskPool(const TaskPool&) = delete;
  TaskPool& operator=(const TaskPool&) = delete;

  // Runs fn(0) .. fn(n - 1), up to `parallelism` at a time, and returns
  // when all have returned. fn must not throw.
  void ParallelFor(size_t n, const std::function<void(size_t)>& fn);

  int parallelism() const { return static_cast<int>(threads_.size()) + 1; }

 private:
  struct Batch;
  void WorkerLoop();

  std::mutex mu_;
  std::condition_variable work_;
  std::deque<std::shared_ptr<Batch>> queue_;  // one entry per helper wanted
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace tensorpager::base

#endif  // TENSORPAGER_STORAGE_BASE_TASK_POOL_H_
