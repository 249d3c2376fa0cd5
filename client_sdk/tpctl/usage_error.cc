#include "client_sdk/tpctl/usage_error.h"

#include "absl/strings/cord.h"

namespace tensorpager::tpctl {
namespace {

// A status payload; server errors never carry it.
constexpr absl::string_view kUsagePayload = "type.tensorpager.dev/tpctl.Usage";

}  // namespace

absl::Status UsageError(absl::string_view message) {
  absl::Status status = absl::InvalidArgumentError(message);
  status.SetPayload(kUsagePayload, absl::Cord("1"));
  return status;
}

bool IsUsageError(const absl::Status& status) {
  return status.GetPayload(kUsagePayload).has_value();
}

}  // namespace tensorpager::tpctl
