#include "client_sdk/tpctl/json_output.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"

namespace tensorpager::tpctl {

absl::Status PrintJson(std::ostream& out, const google::protobuf::Message& m,
                       JsonStyle style) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = style == JsonStyle::kPretty;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string json;
  if (auto s = google::protobuf::util::MessageToJsonString(m, &json, options);
      !s.ok()) {
    return absl::InternalError(absl::StrCat("cannot render ", m.GetTypeName(),
                                            " as JSON: ", s.ToString()));
  }
  out << json;
  if (json.empty() || json.back() != '\n') out << '\n';
  return absl::OkStatus();
}

}  // namespace tensorpager::tpctl
