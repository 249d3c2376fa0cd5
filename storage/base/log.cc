#include "storage/base/log.h"

#include <unistd.h>

#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace tensorpager::log {
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

LogMessage::LogMessage(Severity severity, const char* file, int line) {
  stream_ << SeverityLetter(severity)
          << absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ ", absl::Now(),
                              absl::UTCTimeZone())
          << Basename(file) << ':' << line << "] ";
}

LogMessage::~LogMessage() {
  stream_ << '\n';
  const std::string text = stream_.str();
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n =
        ::write(STDERR_FILENO, text.data() + done, text.size() - done);
    if (n <= 0) break;  // stderr gone: nothing sensible left to do
    done += static_cast<size_t>(n);
  }
}

}  // namespace tensorpager::log
