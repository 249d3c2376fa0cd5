#include "client_sdk/src/server_pressure_source.h"

#include <optional>

#include "client_sdk/src/rpc_util.h"

namespace tensorpager::internal {

// One WatchPressure call: gRPC's threads fill the queue, Run's thread
// drains it.
class ServerPressureSource::Watch final
    : public grpc::ClientReadReactor<v1::PressureEvent> {
 public:
  void Start(v1::TensorPager::Stub* stub) {
    request_.set_send_current(true);
    stub->async()->WatchPressure(&ctx_, &request_, this);
    StartRead(&event_);
    StartCall();
  }

  void Cancel() { ctx_.TryCancel(); }

  // The next event, or nullopt once the call is over (then status()).
  std::optional<v1::PressureEvent> Next() {
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait(lock, [this] { return !queue_.empty() || done_; });
    if (queue_.empty()) return std::nullopt;
    v1::PressureEvent e = std::move(queue_.front());
    queue_.pop_front();
    return e;
  }

  grpc::Status status() {
    std::lock_guard<std::mutex> lock(mu_);
    return status_;
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(event_);
      changed_.notify_all();
    }
    StartRead(&event_);
  }

  void OnDone(const grpc::Status& s) override {
    std::lock_guard<std::mutex> lock(mu_);
    status_ = s;
    done_ = true;
    changed_.notify_all();
  }

 private:
  grpc::ClientContext ctx_;
  v1::WatchPressureRequest request_;
  v1::PressureEvent event_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::deque<v1::PressureEvent> queue_;  // guarded by mu_
  bool done_ = false;                    // guarded by mu_
  grpc::Status status_;                  // guarded by mu_
};

absl::Status ServerPressureSource::Run(
    absl::FunctionRef<void(const v1::PressureEvent&)> on_event) {
  Watch watch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return absl::OkStatus();
    active_ = &watch;
  }
  watch.Start(stub_);
  // Applying an event may take RPCs (write-backs): here, not on gRPC's
  // callback threads.
  while (std::optional<v1::PressureEvent> e = watch.Next()) on_event(*e);
  const grpc::Status s = watch.status();
  std::lock_guard<std::mutex> lock(mu_);
  active_ = nullptr;
  if (stopped_) return absl::OkStatus();
  if (s.ok()) {
    return absl::UnavailableError("the server ended the pressure stream");
  }
  return FromGrpc(s);
}

void ServerPressureSource::Stop() {
  std::lock_guard<std::mutex> lock(mu_);
  stopped_ = true;
  if (active_ != nullptr) active_->Cancel();
}

}  // namespace tensorpager::internal
