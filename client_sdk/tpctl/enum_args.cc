#include "client_sdk/tpctl/enum_args.h"

#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "client_sdk/tpctl/usage_error.h"
#include "google/protobuf/generated_enum_reflection.h"

namespace tensorpager::tpctl {
namespace {

// Looks `text` up among the values of `descriptor` named `prefix` + NAME,
// skipping the *_UNSPECIFIED value.
absl::StatusOr<int> ParseEnum(
    const google::protobuf::EnumDescriptor* descriptor,
    absl::string_view prefix, absl::string_view what, absl::string_view text) {
  const std::string wanted = absl::StrCat(
      prefix,
      absl::StrReplaceAll(absl::AsciiStrToUpper(text), {{"+", "_AND_"}}));
  std::vector<std::string> accepted;
  for (int i = 0; i < descriptor->value_count(); ++i) {
    const google::protobuf::EnumValueDescriptor* value = descriptor->value(i);
    if (value->number() == 0) continue;
    if (value->name() == wanted) return value->number();
    accepted.push_back(
        absl::AsciiStrToLower(value->name().substr(prefix.size())));
  }
  return UsageError(absl::StrCat("unknown ", what, " '", text, "'; use ",
                                 absl::StrJoin(accepted, ", ")));
}

}  // namespace

absl::StatusOr<v1::Tier> ParseTier(absl::string_view text) {
  absl::StatusOr<int> v =
      ParseEnum(v1::Tier_descriptor(), "TIER_", "tier", text);
  if (!v.ok()) return v.status();
  return static_cast<v1::Tier>(*v);
}

absl::StatusOr<v1::RegionType> ParseRegionType(absl::string_view text) {
  absl::StatusOr<int> v =
      ParseEnum(v1::RegionType_descriptor(), "", "region type", text);
  if (!v.ok()) return v.status();
  return static_cast<v1::RegionType>(*v);
}

absl::StatusOr<v1::DType> ParseDType(absl::string_view text) {
  absl::StatusOr<int> v = ParseEnum(v1::DType_descriptor(), "", "dtype", text);
  if (!v.ok()) return v.status();
  return static_cast<v1::DType>(*v);
}

absl::StatusOr<v1::Algorithm> ParseAlgorithm(absl::string_view text) {
  absl::StatusOr<int> v =
      ParseEnum(v1::Algorithm_descriptor(), "", "algorithm", text);
  if (!v.ok()) return v.status();
  return static_cast<v1::Algorithm>(*v);
}

}  // namespace tensorpager::tpctl
