// Client.watch_pressure(): the server's WatchPressure stream as a queue
// Python reads from. gRPC's threads fill it; Next waits with the GIL
// released, in short slices so that Ctrl-C still reaches the main thread;
// Close cancels the call from any thread.
#ifndef TENSORPAGER_CLIENT_SDK_PYTHON_NATIVE_PRESSURE_WATCH_H_
#define TENSORPAGER_CLIENT_SDK_PYTHON_NATIVE_PRESSURE_WATCH_H_

#include <grpcpp/channel.h>
#include <pybind11/pybind11.h>

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>

#include "tensorpager/v1/tensorpager.grpc.pb.h"

namespace tensorpager::python {

class PressureWatch final : public grpc::ClientReadReactor<v1::PressureEvent> {
 public:
  // Starts the call on `channel` (the client's), whose stub it keeps.
  PressureWatch(std::shared_ptr<grpc::Channel> channel, bool send_current);
  // Cancels the call and waits for gRPC to let go of this object.
  ~PressureWatch() override;

  // The next event as a dict (proto_dict.h); None when `timeout_s` (None:
  // no limit) passes first. Raises StopIteration once closed, the stream's
  // error (tensorpager.Unavailable when the server went away) when it
  // ended otherwise. Call with the GIL held.
  pybind11::object Next(std::optional<double> timeout_s);
  // Ends the stream; a Next waiting in another thread stops. Idempotent.
  void Close();
  bool closed();

  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  std::unique_ptr<v1::TensorPager::Stub> stub_;
  grpc::ClientContext ctx_;
  v1::WatchPressureRequest request_;
  v1::PressureEvent event_;  // filled by gRPC between StartRead and OnReadDone

  std::mutex mu_;
  std::condition_variable changed_;
  std::deque<v1::PressureEvent> queue_;  // guarded by mu_
  bool closing_ = false;                 // guarded by mu_
  bool done_ = false;                    // guarded by mu_
  grpc::Status status_;                  // guarded by mu_
};

}  // namespace tensorpager::python

#endif  // TENSORPAGER_CLIENT_SDK_PYTHON_NATIVE_PRESSURE_WATCH_H_
