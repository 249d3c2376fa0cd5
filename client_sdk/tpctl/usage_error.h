// Usage errors: the command line itself is wrong (exit code 2), as opposed
// to a request that failed.
#ifndef TENSORPAGER_CLIENT_SDK_TPCTL_USAGE_ERROR_H_
#define TENSORPAGER_CLIENT_SDK_TPCTL_USAGE_ERROR_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tensorpager::tpctl {

// INVALID_ARGUMENT marked as a usage error.
absl::Status UsageError(absl::string_view message);
bool IsUsageError(const absl::Status& status);

}  // namespace tensorpager::tpctl

#endif  // TENSORPAGER_CLIENT_SDK_TPCTL_USAGE_ERROR_H_
