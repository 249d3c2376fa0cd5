// The SDK's background reporting thread: sends the accesses the local cache
// served (ReportAccesses) in batches, on an interval and as soon as a batch
// is full, and this process's GPU memory use and cache sizes
// (ReportClientUsage) on another interval, applying the pressure states the
// server answers with.
#ifndef TENSORPAGER_CLIENT_SDK_SRC_USAGE_REPORTER_H_
#define TENSORPAGER_CLIENT_SDK_SRC_USAGE_REPORTER_H_

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "client_sdk/src/local_cache.h"
#include "storage/base/log.h"
#include "tensorpager/client_options.h"
#include "tensorpager/device_runtime.h"
#include "tensorpager/v1/tensorpager.grpc.pb.h"

namespace tensorpager::internal {

class UsageReporter {
 public:
  // `apply_pressure`: act on the pressure states ReportClientUsage returns
  // (off when the application supplied its own PressureSource).
  UsageReporter(v1::TensorPager::Stub* stub, std::string client_id,
                const ClientOptions& options, DeviceRuntime* runtime,
                LocalCache* cache, base::Logger* log, bool apply_pressure);
  UsageReporter(const UsageReporter&) = delete;
  UsageReporter& operator=(const UsageReporter&) = delete;
  ~UsageReporter() { Stop(); }

  // Sends what is pending, then ends the thread. Idempotent.
  void Stop();

 private:
  void Loop();
  void SendAccesses(std::vector<v1::AccessReport>* reports);
  void SendUsage();

  v1::TensorPager::Stub* stub_;
  const std::string client_id_;
  const ClientOptions& options_;
  DeviceRuntime* runtime_;
  LocalCache* cache_;
  base::Logger* log_;
  const bool apply_pressure_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace tensorpager::internal

#endif  // TENSORPAGER_CLIENT_SDK_SRC_USAGE_REPORTER_H_
