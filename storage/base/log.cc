#include "storage/base/log.h"

#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace tensorpager::base {
namespace {

char SeverityLetter(Severity s) {
  switch (s) {
    case Severity::kInfo:
      return 'I';
    case Severity::kWarning:
      return 'W';
    case Severity::kError:
      return 'E';
  }
  return 'I';
}

absl::string_view Basename(absl::string_view path) {
  const size_t slash = path.rfind('/');
  return slash == absl::string_view::npos ? path : path.substr(slash + 1);
}

}  // namespace

std::string FormatLogLine(Severity severity, absl::Time when, LogClock clock,
                          absl::string_view origin, absl::string_view message) {
  const std::string time =
      clock == LogClock::kUtcMicros
          ? absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", when, absl::UTCTimeZone())
          : absl::FormatTime("%Y-%m-%dT%H:%M:%E3S", when,
                             absl::LocalTimeZone());
  const char letter[] = {SeverityLetter(severity), '\0'};
  return absl::StrCat(letter, time, " ", origin, message, "\n");
}

void WriteToStderr(absl::string_view text) {
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n =
        ::write(STDERR_FILENO, text.data() + done, text.size() - done);
    if (n <= 0) break;  // stderr gone: nothing sensible left to do
    done += static_cast<size_t>(n);
  }
}

LogMessage::LogMessage(Severity severity, const char* file, int line)
    : severity_(severity), when_(absl::Now()), file_(file), line_(line) {}

LogMessage::~LogMessage() {
  WriteToStderr(FormatLogLine(severity_, when_, LogClock::kUtcMicros,
                              absl::StrCat(Basename(file_), ":", line_, "] "),
                              stream_.str()));
}

Logger::Logger(Sink sink, absl::string_view component)
    : sink_(std::move(sink)), origin_(absl::StrCat(component, ": ")) {}

void Logger::Info(absl::string_view message) const {
  Emit(Severity::kInfo, message);
}

void Logger::Warning(absl::string_view message) const {
  Emit(Severity::kWarning, message);
}

void Logger::WarningOnce(absl::string_view topic, absl::string_view message) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!said_.emplace(topic).second) return;
  }
  Warning(message);
}

void Logger::Emit(Severity severity, absl::string_view message) const {
  const std::string line = FormatLogLine(
      severity, absl::Now(), LogClock::kLocalMillis, origin_, message);
  if (sink_) {
    sink_(absl::string_view(line.data(), line.size() - 1));
    return;
  }
  WriteToStderr(line);
}

}  // namespace tensorpager::base
