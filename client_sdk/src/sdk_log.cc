#include "client_sdk/src/sdk_log.h"

#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace tensorpager::internal {

SdkLog::SdkLog(Sink sink) : sink_(std::move(sink)) {}

void SdkLog::Info(absl::string_view message) const { Emit("I", message); }

void SdkLog::Warning(absl::string_view message) const { Emit("W", message); }

void SdkLog::WarningOnce(absl::string_view topic, absl::string_view message) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!said_.emplace(topic).second) return;
  }
  Warning(message);
}

void SdkLog::Emit(absl::string_view severity, absl::string_view message) const {
  const std::string line =
      absl::StrCat(severity,
                   absl::FormatTime("%Y-%m-%dT%H:%M:%E3S", absl::Now(),
                                    absl::LocalTimeZone()),
                   " tensorpager-sdk: ", message, "\n");
  if (sink_) {
    sink_(absl::string_view(line.data(), line.size() - 1));
    return;
  }
  // One write(2), so lines from several threads never interleave.
  const ssize_t unused = ::write(STDERR_FILENO, line.data(), line.size());
  static_cast<void>(unused);
}

}  // namespace tensorpager::internal
