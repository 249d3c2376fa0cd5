#include "tensorpager/block_name.h"

#include "storage/base/block_key.h"

namespace tensorpager {

std::string BlockName::ToString() const {
  return storage::BlockKeyView::Resolve(ns, id).ToString();
}

}  // namespace tensorpager
