#include "client_sdk/tpctl/exit_code.h"

#include "absl/strings/str_cat.h"
#include "client_sdk/tpctl/usage_error.h"

namespace tensorpager::tpctl {

ExitCode ExitCodeFor(const absl::Status& status) {
  if (status.ok()) return kExitOk;
  if (IsUsageError(status)) return kExitUsage;
  if (status.code() == absl::StatusCode::kUnavailable ||
      status.code() == absl::StatusCode::kDeadlineExceeded) {
    return kExitUnavailable;
  }
  return kExitFailed;
}

std::string ErrorLine(const absl::Status& status, absl::string_view target) {
  const std::string code = absl::StatusCodeToString(status.code());
  switch (ExitCodeFor(status)) {
    case kExitOk:
      return "";
    case kExitUsage:
      return absl::StrCat("tpctl: ", status.message());
    case kExitUnavailable:
      return absl::StrCat(
          "tpctl: ", code, ": no answer from tensorpagerd at ", target, ": ",
          status.message(),
          " (is it running? set --target or $TENSORPAGER_TARGET)");
    case kExitFailed:
      break;
  }
  return absl::StrCat("tpctl: ", code, ": ", status.message());
}

}  // namespace tensorpager::tpctl
