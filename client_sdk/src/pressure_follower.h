// Runs a PressureSource on its own thread and applies each event to the
// local cache; restarts a failed source after a back-off.
#ifndef TENSORPAGER_CLIENT_SDK_SRC_PRESSURE_FOLLOWER_H_
#define TENSORPAGER_CLIENT_SDK_SRC_PRESSURE_FOLLOWER_H_

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "client_sdk/src/local_cache.h"
#include "storage/base/log.h"
#include "tensorpager/pressure_source.h"

namespace tensorpager::internal {

class PressureFollower {
 public:
  PressureFollower(std::shared_ptr<PressureSource> source, LocalCache* cache,
                   base::Logger* log);
  PressureFollower(const PressureFollower&) = delete;
  PressureFollower& operator=(const PressureFollower&) = delete;
  ~PressureFollower() { Stop(); }

  void Stop();

 private:
  void Loop();

  std::shared_ptr<PressureSource> source_;
  LocalCache* cache_;
  base::Logger* log_;
  std::mutex mu_;
  std::condition_variable stop_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace tensorpager::internal

#endif  // TENSORPAGER_CLIENT_SDK_SRC_PRESSURE_FOLLOWER_H_
