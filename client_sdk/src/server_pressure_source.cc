#include "client_sdk/src/server_pressure_source.h"

#include "client_sdk/src/rpc_util.h"

namespace tensorpager::internal {

absl::Status ServerPressureSource::Run(
    absl::FunctionRef<void(const v1::PressureEvent&)> on_event) {
  // No deadline: the stream lasts as long as the client.
  grpc::ClientContext ctx;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return absl::OkStatus();
    active_ = &ctx;
  }
  v1::WatchPressureRequest request;
  request.set_send_current(true);
  std::unique_ptr<grpc::ClientReader<v1::PressureEvent>> reader =
      stub_->WatchPressure(&ctx, request);
  v1::PressureEvent event;
  while (reader->Read(&event)) on_event(event);
  const grpc::Status s = reader->Finish();
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
  if (active_ != nullptr) active_->TryCancel();
}

}  // namespace tensorpager::internal
