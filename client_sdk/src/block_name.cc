#include "tensorpager/block_name.h"

#include "client_sdk/src/block_name_key.h"
#include "storage/base/block_key.h"

namespace tensorpager {

std::string BlockName::ToString() const {
  return internal::LocalKey(*this).ToString();
}

namespace internal {

absl::StatusOr<storage::BlockKeyView> CheckedKey(const BlockName& name) {
  return storage::BlockKeyView::Make(name.ns, name.id);
}

storage::BlockKeyView LocalKey(const BlockName& name) {
  return storage::BlockKeyView::Resolve(name.ns, name.id);
}

}  // namespace internal
}  // namespace tensorpager
