// PressureSource over the server's WatchPressure stream. The stream runs on
// gRPC's callback API and hands events to Run's thread through a queue, so
// no SDK thread sits in a blocking Read: such a thread would take part in
// gRPC's polling and hand every data-path response over to its caller with
// an extra thread switch.
#ifndef TENSORPAGER_CLIENT_SDK_SRC_SERVER_PRESSURE_SOURCE_H_
#define TENSORPAGER_CLIENT_SDK_SRC_SERVER_PRESSURE_SOURCE_H_

#include <grpcpp/client_context.h>

#include <condition_variable>
#include <deque>
#include <mutex>

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
  class Watch;

  v1::TensorPager::Stub* stub_;
  std::mutex mu_;
  bool stopped_ = false;     // guarded by mu_
  Watch* active_ = nullptr;  // guarded by mu_
};

}  // namespace tensorpager::internal

#endif  // TENSORPAGER_CLIENT_SDK_SRC_SERVER_PRESSURE_SOURCE_H_
