// Protobuf messages as JSON for tpctl --json: proto field names
// (snake_case), every field printed, enums by name.
#ifndef TENSORPAGER_CLIENT_SDK_TPCTL_JSON_OUTPUT_H_
#define TENSORPAGER_CLIENT_SDK_TPCTL_JSON_OUTPUT_H_

#include <ostream>

#include "absl/status/status.h"
#include "google/protobuf/message.h"

namespace tensorpager::tpctl {

enum class JsonStyle { kPretty, kOneLine };

absl::Status PrintJson(std::ostream& out, const google::protobuf::Message& m,
                       JsonStyle style = JsonStyle::kPretty);

}  // namespace tensorpager::tpctl

#endif  // TENSORPAGER_CLIENT_SDK_TPCTL_JSON_OUTPUT_H_
