// One-line structured logging to stderr (Debian's Abseil 20220623 predates
// absl/log). Each message is formatted completely, then written with one
// write(2) call so lines from different threads never interleave.
//   TP_LOG(INFO) << "recovered " << n << " blocks";
#ifndef TENSORPAGER_STORAGE_BASE_LOG_H_
#define TENSORPAGER_STORAGE_BASE_LOG_H_

#include <sstream>
#include <string_view>

namespace tensorpager::log {

enum class Severity { kInfo, kWarning, kError };

class LogMessage {
 public:
  LogMessage(Severity severity, const char* file, int line);
  ~LogMessage();
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;

  std::ostream& stream() { return stream_; }

 private:
  std::ostringstream stream_;
};

}  // namespace tensorpager::log

#define TP_LOG_SEVERITY_INFO ::tensorpager::log::Severity::kInfo
#define TP_LOG_SEVERITY_WARNING ::tensorpager::log::Severity::kWarning
#define TP_LOG_SEVERITY_ERROR ::tensorpager::log::Severity::kError
#define TP_LOG(severity)                                               \
  ::tensorpager::log::LogMessage(TP_LOG_SEVERITY_##severity, __FILE__, \
                                 __LINE__)                             \
      .stream()

#endif  // TENSORPAGER_STORAGE_BASE_LOG_H_
