// The policy thread: keeps the RAM tier under --swap_threshold by swapping
// blocks out in the background, so writes and swap-ins rarely have to
// evict on their own path.
#ifndef TENSORPAGER_SERVER_POLICY_THREAD_H_
#define TENSORPAGER_SERVER_POLICY_THREAD_H_

#include <thread>

#include "absl/time/time.h"
#include "storage/base/shared_mutex.h"
#include "storage/block_store.h"

namespace tensorpager::server {

class PolicyThread {
 public:
  struct Options {
    double swap_threshold = 0.75;
    double swap_target = 0.65;
    absl::Duration interval = absl::Milliseconds(100);
  };
  PolicyThread(storage::BlockStore* store, Options options);
  ~PolicyThread();  // stops and joins
  PolicyThread(const PolicyThread&) = delete;
  PolicyThread& operator=(const PolicyThread&) = delete;

  // Runs one check now (also used by the pressure monitor's callbacks).
  void Wake();

 private:
  bool ShouldRun() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stop_ || wake_;
  }
  void Run();
  void CheckOnce();

  // How often free heap pages go back to the kernel, and how much free
  // memory stays at the heap's top for the next buffers.
  static constexpr absl::Duration kHeapTrimInterval = absl::Seconds(10);
  static constexpr size_t kHeapTrimKeepBytes = 64 << 20;

  // Background swap-outs since the last log line (policy thread only).
  static constexpr absl::Duration kLogInterval = absl::Seconds(10);
  struct Logged {
    uint64_t blocks = 0;
    uint64_t bytes = 0;
    uint64_t rounds = 0;
    absl::Duration time = absl::ZeroDuration();
    absl::Time next = absl::InfinitePast();  // the first one logs at once
  };
  Logged logged_;

  storage::BlockStore* store_;
  const Options options_;
  SharedMutex mu_;
  CondVar wakeup_;  // signalled on Wake and on stop
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace tensorpager::server

#endif  // TENSORPAGER_SERVER_POLICY_THREAD_H_
