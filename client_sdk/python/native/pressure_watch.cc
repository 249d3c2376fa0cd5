#include "client_sdk/python/native/pressure_watch.h"

#include <chrono>
#include <utility>

#include "absl/status/status.h"
#include "client_sdk/python/native/errors.h"
#include "client_sdk/python/native/gil.h"
#include "client_sdk/python/native/proto_dict.h"

namespace tensorpager::python {
namespace py = pybind11;

namespace {
// How long Next waits with the GIL released before it looks for a signal
// (KeyboardInterrupt) in the main thread.
constexpr std::chrono::milliseconds kSignalSlice{100};
}  // namespace

PressureWatch::PressureWatch(std::shared_ptr<grpc::Channel> channel,
                             bool send_current)
    : stub_(v1::TensorPager::NewStub(std::move(channel))) {
  request_.set_send_current(send_current);
  // Client-side pressure streams live as long as the caller reads them:
  // no deadline, ended by Close.
  stub_->async()->WatchPressure(&ctx_, &request_, this);
  StartRead(&event_);
  StartCall();
}

PressureWatch::~PressureWatch() {
  ctx_.TryCancel();
  std::unique_lock<std::mutex> lock(mu_);
  changed_.wait(lock, [this] { return done_; });
}

void PressureWatch::OnReadDone(bool ok) {
  if (!ok) return;  // OnDone follows
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(event_);
    changed_.notify_all();
  }
  StartRead(&event_);
}

void PressureWatch::OnDone(const grpc::Status& status) {
  std::lock_guard<std::mutex> lock(mu_);
  status_ = status;
  done_ = true;
  changed_.notify_all();
}

void PressureWatch::Close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closing_ = true;
    changed_.notify_all();
  }
  ctx_.TryCancel();
}

bool PressureWatch::closed() {
  std::lock_guard<std::mutex> lock(mu_);
  return closing_ || done_;
}

py::object PressureWatch::Next(std::optional<double> timeout_s) {
  using Clock = std::chrono::steady_clock;
  // No timeout: a deadline that never comes.
  const Clock::time_point deadline =
      timeout_s ? Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(*timeout_s))
                : Clock::time_point::max();
  while (true) {
    std::optional<v1::PressureEvent> event;
    bool closing = false;
    bool done = false;
    grpc::Status status;
    {
      GilRelease release;
      std::unique_lock<std::mutex> lock(mu_);
      Clock::time_point until = Clock::now() + kSignalSlice;
      if (deadline < until) until = deadline;
      changed_.wait_until(
          lock, until, [this] { return !queue_.empty() || closing_ || done_; });
      closing = closing_;
      done = done_;
      status = status_;
      if (!closing && !queue_.empty()) {
        event = std::move(queue_.front());
        queue_.pop_front();
      }
    }
    if (event) return MessageToDict(*event);
    if (closing) throw py::stop_iteration();
    if (done) {
      if (status.ok()) {
        throw StatusError(
            absl::UnavailableError("the server ended the pressure stream"));
      }
      throw StatusError(
          absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                       status.error_message()));
    }
    // Ctrl-C in the main thread raises here, between slices.
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    if (Clock::now() >= deadline) return py::none();
  }
}

}  // namespace tensorpager::python
