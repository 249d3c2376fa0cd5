// tpctl's exit codes and error lines. Scripts branch on the code; people
// read the line, which names the gRPC code the server answered with.
#ifndef TENSORPAGER_CLIENT_SDK_TPCTL_EXIT_CODE_H_
#define TENSORPAGER_CLIENT_SDK_TPCTL_EXIT_CODE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tensorpager::tpctl {

enum ExitCode : int {
  kExitOk = 0,
  kExitFailed = 1,       // the server refused the request, or a local file
  kExitUsage = 2,        // the command line is wrong
  kExitUnavailable = 3,  // no server answered (UNAVAILABLE, deadline)
};

ExitCode ExitCodeFor(const absl::Status& status);

// "tpctl: NOT_FOUND: block 'x' is not registered", with a hint for an
// unreachable server.
std::string ErrorLine(const absl::Status& status, absl::string_view target);

}  // namespace tensorpager::tpctl

#endif  // TENSORPAGER_CLIENT_SDK_TPCTL_EXIT_CODE_H_
