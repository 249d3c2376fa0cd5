// A PressureSource a test drives: Publish hands an event to the SDK and
// returns once the SDK has acted on it.
#ifndef TENSORPAGER_CLIENT_SDK_TESTING_MANUAL_PRESSURE_SOURCE_H_
#define TENSORPAGER_CLIENT_SDK_TESTING_MANUAL_PRESSURE_SOURCE_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>

#include "absl/time/time.h"
#include "tensorpager/pressure_source.h"

namespace tensorpager::testing {

class ManualPressureSource final : public PressureSource {
 public:
  // DEADLINE_EXCEEDED when the SDK does not take the event in `timeout`.
  absl::Status Publish(const v1::PressureEvent& event,
                       absl::Duration timeout = absl::Seconds(10));
  absl::Status Publish(const std::string& resource, v1::PressureLevel level);

  absl::Status Run(
      absl::FunctionRef<void(const v1::PressureEvent&)> on_event) override;
  void Stop() override;

 private:
  // mu_ guards the rest; changed_ signals every change of it.
  std::mutex mu_;
  std::condition_variable changed_;
  std::deque<v1::PressureEvent> queue_;
  uint64_t published_ = 0;
  uint64_t delivered_ = 0;
  bool running_ = false;
  bool stopped_ = false;
  v1::PressureLevel last_level_ = v1::LOW;
};

}  // namespace tensorpager::testing

#endif  // TENSORPAGER_CLIENT_SDK_TESTING_MANUAL_PRESSURE_SOURCE_H_
