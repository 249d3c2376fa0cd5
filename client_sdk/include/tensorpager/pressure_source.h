// Where the SDK learns about memory pressure. By default it follows the
// server's WatchPressure stream; an application (or a test) can supply its
// own source, e.g. to react to its allocator's own signals.
#ifndef TENSORPAGER_CLIENT_SDK_INCLUDE_TENSORPAGER_PRESSURE_SOURCE_H_
#define TENSORPAGER_CLIENT_SDK_INCLUDE_TENSORPAGER_PRESSURE_SOURCE_H_

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "tensorpager/v1/tensorpager.pb.h"

namespace tensorpager {

class PressureSource {
 public:
  virtual ~PressureSource() = default;

  // Delivers events to `on_event` until Stop() is called (then returns OK)
  // or the source fails (then returns the error; the SDK calls Run again
  // after a back-off). Resources are named as in the server's Status:
  // "host_ram", "gpu0", "gpu1", ...
  virtual absl::Status Run(
      absl::FunctionRef<void(const v1::PressureEvent&)> on_event) = 0;
  // Makes a Run in progress return soon; later Runs return at once.
  virtual void Stop() = 0;
};

}  // namespace tensorpager

#endif  // TENSORPAGER_CLIENT_SDK_INCLUDE_TENSORPAGER_PRESSURE_SOURCE_H_
