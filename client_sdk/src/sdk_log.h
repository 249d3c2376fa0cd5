// The SDK's log: one line per message to the application's sink (or
// stderr), with a way to say a thing only once per Client.
#ifndef TENSORPAGER_CLIENT_SDK_SRC_SDK_LOG_H_
#define TENSORPAGER_CLIENT_SDK_SRC_SDK_LOG_H_

#include <functional>
#include <mutex>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"

namespace tensorpager::internal {

class SdkLog {
 public:
  using Sink = std::function<void(absl::string_view)>;

  // A null sink writes to stderr.
  explicit SdkLog(Sink sink);

  void Info(absl::string_view message) const;
  void Warning(absl::string_view message) const;
  // Logs a warning the first time `topic` comes up; later calls are quiet.
  void WarningOnce(absl::string_view topic, absl::string_view message);

 private:
  void Emit(absl::string_view severity, absl::string_view message) const;

  Sink sink_;
  std::mutex mu_;
  absl::flat_hash_set<std::string> said_;  // guarded by mu_
};

}  // namespace tensorpager::internal

#endif  // TENSORPAGER_CLIENT_SDK_SRC_SDK_LOG_H_
