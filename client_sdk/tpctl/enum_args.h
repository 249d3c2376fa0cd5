// The API's enums as tpctl accepts them on the command line: lower or upper
// case, without the enum's prefix ("ram", "kv_cache", "float16", "clock").
#ifndef TENSORPAGER_CLIENT_SDK_TPCTL_ENUM_ARGS_H_
#define TENSORPAGER_CLIENT_SDK_TPCTL_ENUM_ARGS_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "tensorpager/v1/tensorpager.pb.h"

namespace tensorpager::tpctl {

// Usage errors list the accepted names.
absl::StatusOr<v1::Tier> ParseTier(absl::string_view text);
absl::StatusOr<v1::RegionType> ParseRegionType(absl::string_view text);
absl::StatusOr<v1::DType> ParseDType(absl::string_view text);
absl::StatusOr<v1::Algorithm> ParseAlgorithm(absl::string_view text);

}  // namespace tensorpager::tpctl

#endif  // TENSORPAGER_CLIENT_SDK_TPCTL_ENUM_ARGS_H_
