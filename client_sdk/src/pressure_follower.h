// Runs a PressureSource on its own thread and applies each event to the
// local cache; restarts a failed source after a back-off.
#ifndef TENSORPAGER_CLIENT_SDK_SRC_PRESSURE_FOLLOWER_H_
#define TENSORPAGER_CLIENT_SDK_SRC_PRESSURE_FOLLOWER_H_

#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "client_sdk/src/local_cache.h"
#include "client_sdk/src/sdk_log.h"
#include "tensorpager/pressure_source.h"

namespace tensorpager::internal {

class PressureFollower {
 public:
  PressureFollower(std::shared_ptr<PressureSource> source, LocalCache* cache,
                   SdkLog* log);
  PressureFollower(const PressureFollower&) = delete;
  PressureFollower& operator=(const PressureFollower&) = delete;
  ~PressureFollower() { Stop(); }

  void Stop();

 private:
  void Loop();

  std::shared_ptr<PressureSource> source_;
  LocalCache* cache_;
  SdkLog* log_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace tensorpager::internal

#endif  // TENSORPAGER_CLIENT_SDK_SRC_PRESSURE_FOLLOWER_H_
