// PressureSource over the server's WatchPressure stream.
#ifndef TENSORPAGER_CLIENT_SDK_SRC_SERVER_PRESSURE_SOURCE_H_
#define TENSORPAGER_CLIENT_SDK_SRC_SERVER_PRESSURE_SOURCE_H_

#include <grpcpp/client_context.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "tensorpager/pressure_source.h"
#include "tensorpager/v1/tensorpager.grpc.pb.h"

namespace tensorpager::internal {

class ServerPressureSource final : public PressureSource {
 public:
  explicit ServerPressureSource(v1::TensorPager::Stub* stub) : stub_(stub) {}

  absl::Status Run(
      absl::FunctionRef<void(const v1::PressureEvent&)> on_event) override;
  void Stop() override;

 private:
  v1::TensorPager::Stub* stub_;
  absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* active_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace tensorpager::internal

#endif  // TENSORPAGER_CLIENT_SDK_SRC_SERVER_PRESSURE_SOURCE_H_
