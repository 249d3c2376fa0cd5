#include "client_sdk/testing/manual_pressure_source.h"

#include "absl/time/clock.h"

namespace tensorpager::testing {

absl::Status ManualPressureSource::Publish(const v1::PressureEvent& event,
                                           absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto taking = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return running_ || stopped_;
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&taking), timeout) || stopped_) {
    return absl::DeadlineExceededError("no SDK is following this source");
  }
  queue_.push_back(event);
  const uint64_t id = ++published_;
  auto done = [this, id]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return delivered_ >= id || stopped_;
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&done), timeout) ||
      delivered_ < id) {
    return absl::DeadlineExceededError("the SDK did not act on the event");
  }
  return absl::OkStatus();
}

absl::Status ManualPressureSource::Publish(const std::string& resource,
                                           v1::PressureLevel level) {
  v1::PressureEvent e;
  e.set_resource(resource);
  e.set_level(level);
  e.set_unix_ms(absl::ToUnixMillis(absl::Now()));
  e.mutable_state()->set_resource(resource);
  e.mutable_state()->set_present(true);
  e.mutable_state()->set_level(level);
  e.mutable_state()->set_source("test");
  {
    absl::MutexLock lock(&mu_);
    e.set_previous_level(last_level_);
    last_level_ = level;
  }
  return Publish(e);
}

absl::Status ManualPressureSource::Run(
    absl::FunctionRef<void(const v1::PressureEvent&)> on_event) {
  absl::MutexLock lock(&mu_);
  running_ = true;
  for (;;) {
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stopped_ || !queue_.empty();
    };
    mu_.Await(absl::Condition(&ready));
    if (stopped_) {
      running_ = false;
      return absl::OkStatus();
    }
    v1::PressureEvent e = std::move(queue_.front());
    queue_.pop_front();
    mu_.Unlock();
    on_event(e);
    mu_.Lock();
    ++delivered_;
  }
}

void ManualPressureSource::Stop() {
  absl::MutexLock lock(&mu_);
  stopped_ = true;
}

}  // namespace tensorpager::testing
