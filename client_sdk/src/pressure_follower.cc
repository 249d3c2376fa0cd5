#include "client_sdk/src/pressure_follower.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace tensorpager::internal {
namespace {

constexpr absl::Duration kFirstBackoff = absl::Milliseconds(200);
constexpr absl::Duration kMaxBackoff = absl::Seconds(5);
// A server without WatchPressure will not grow one soon.
constexpr absl::Duration kUnimplementedBackoff = absl::Seconds(30);

}  // namespace

PressureFollower::PressureFollower(std::shared_ptr<PressureSource> source,
                                   LocalCache* cache, base::Logger* log)
    : source_(std::move(source)), cache_(cache), log_(log) {
  thread_ = std::thread([this] { Loop(); });
}

void PressureFollower::Loop() {
  absl::Duration backoff = kFirstBackoff;
  for (;;) {
    bool delivered = false;
    const absl::Status s = source_->Run([&](const v1::PressureEvent& e) {
      delivered = true;
      cache_->ApplyPressure(e.resource(), e.level());
    });
    std::unique_lock<std::mutex> lock(mu_);
    if (stopping_) return;
    if (delivered) backoff = kFirstBackoff;
    absl::Duration wait = backoff;
    if (s.code() == absl::StatusCode::kUnimplemented) {
      log_->WarningOnce("watch-unimplemented",
                        "the server does not implement WatchPressure; the "
                        "local cache follows no pressure signal until it does");
      wait = kUnimplementedBackoff;
    } else if (!s.ok()) {
      log_->WarningOnce(absl::StrCat("watch-", s.code()),
                        absl::StrCat("pressure stream failed (", s.ToString(),
                                     "); retrying with back-off"));
    }
    backoff = std::min(backoff * 2, kMaxBackoff);
    if (stop_.wait_for(lock, absl::ToChronoNanoseconds(wait),
                       [this] { return stopping_; })) {
      return;
    }
  }
}

void PressureFollower::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    stop_.notify_all();
  }
  source_->Stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace tensorpager::internal
