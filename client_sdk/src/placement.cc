#include "tensorpager/placement.h"

#include "absl/strings/str_cat.h"

namespace tensorpager {

std::string Placement::ToString() const {
  return is_host() ? std::string("host") : absl::StrCat("cuda:", device_);
}

}  // namespace tensorpager
