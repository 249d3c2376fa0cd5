#include "client_sdk/testing/manual_pressure_source.h"

#include "absl/time/clock.h"

namespace tensorpager::testing {

absl::Status ManualPressureSource::Publish(const v1::PressureEvent& event,
                                           absl::Duration timeout) {
  const auto wait = absl::ToChronoNanoseconds(timeout);
  std::unique_lock<std::mutex> lock(mu_);
  if (!changed_.wait_for(lock, wait, [this] { return running_ || stopped_; }) ||
      stopped_) {
    return absl::DeadlineExceededError("no SDK is following this source");
  }
  queue_.push_back(event);
  const uint64_t id = ++published_;
  changed_.notify_all();
  if (!changed_.wait_for(lock, wait,
                         [this, id] { return delivered_ >= id || stopped_; }) ||
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
    std::lock_guard<std::mutex> lock(mu_);
    e.set_previous_level(last_level_);
    last_level_ = level;
  }
  return Publish(e);
}

absl::Status ManualPressureSource::Run(
    absl::FunctionRef<void(const v1::PressureEvent&)> on_event) {
  std::unique_lock<std::mutex> lock(mu_);
  running_ = true;
  changed_.notify_all();
  for (;;) {
    changed_.wait(lock, [this] { return stopped_ || !queue_.empty(); });
    if (stopped_) {
      running_ = false;
      return absl::OkStatus();
    }
    v1::PressureEvent e = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    on_event(e);
    lock.lock();
    ++delivered_;
    changed_.notify_all();
  }
}

void ManualPressureSource::Stop() {
  std::lock_guard<std::mutex> lock(mu_);
  stopped_ = true;
  changed_.notify_all();
}

}  // namespace tensorpager::testing
