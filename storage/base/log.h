// One log for the server and the SDK (Debian's Abseil 20220623 predates
// absl/log). Every line is formatted completely by FormatLogLine, then
// written with one write(2) call so lines from different threads never
// interleave, or handed whole to an application's sink.
//   TP_LOG(INFO) << "recovered " << n << " blocks";   // the server's
//   Logger log(sink, "tensorpager-sdk");               // a library's
//   log.WarningOnce("watch", "...");
#ifndef TENSORPAGER_STORAGE_BASE_LOG_H_
#define TENSORPAGER_STORAGE_BASE_LOG_H_

#include <functional>
#include <mutex>
#include <sstream>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace tensorpager::base {

enum class Severity { kInfo, kWarning, kError };

// How a line gives its time. The server's lines carry UTC to the
// microsecond, with the source file and line; a library's land in its
// application's log, where local time to the millisecond reads best.
enum class LogClock { kUtcMicros, kLocalMillis };

// "<severity letter><time> <origin><message>\n": the layout of every line.
// `origin` brings its own separator ("file.cc:12] ", "tensorpager-sdk: ").
std::string FormatLogLine(Severity severity, absl::Time when, LogClock clock,
                          absl::string_view origin, absl::string_view message);

// Writes `text` to stderr in one write(2) where the kernel takes it whole.
void WriteToStderr(absl::string_view text);

// TP_LOG's message: stderr, UTC, the source file and line.
class LogMessage {
 public:
  LogMessage(Severity severity, const char* file, int line);
  ~LogMessage();
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;

  std::ostream& stream() { return stream_; }

 private:
  const Severity severity_;
  const absl::Time when_;
  const char* const file_;
  const int line_;
  std::ostringstream stream_;
};

// A library's log: one line per message, named after the component, to
// the application's sink (or stderr), with a way to say a thing only once
// per Logger.
class Logger {
 public:
  // Gets each line without its '\n'.
  using Sink = std::function<void(absl::string_view)>;

  // A null sink writes to stderr.
  Logger(Sink sink, absl::string_view component);
  Logger(const Logger&) = delete;
  Logger& operator=(const Logger&) = delete;

  void Info(absl::string_view message) const;
  void Warning(absl::string_view message) const;
  // Logs a warning the first time `topic` comes up; later calls are quiet.
  void WarningOnce(absl::string_view topic, absl::string_view message);

 private:
  void Emit(Severity severity, absl::string_view message) const;

  const Sink sink_;
  const std::string origin_;  // "<component>: "
  std::mutex mu_;
  absl::flat_hash_set<std::string> said_;  // guarded by mu_
};

}  // namespace tensorpager::base

#define TP_LOG_SEVERITY_INFO ::tensorpager::base::Severity::kInfo
#define TP_LOG_SEVERITY_WARNING ::tensorpager::base::Severity::kWarning
#define TP_LOG_SEVERITY_ERROR ::tensorpager::base::Severity::kError
#define TP_LOG(severity)                                                \
  ::tensorpager::base::LogMessage(TP_LOG_SEVERITY_##severity, __FILE__, \
                                  __LINE__)                             \
      .stream()

#endif  // TENSORPAGER_STORAGE_BASE_LOG_H_
