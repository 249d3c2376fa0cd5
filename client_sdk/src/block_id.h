// The local cache's key of a block: namespace (resolved: never empty) and
// id, hashable and comparable without building strings on lookups.
#ifndef TENSORPAGER_CLIENT_SDK_SRC_BLOCK_ID_H_
#define TENSORPAGER_CLIENT_SDK_SRC_BLOCK_ID_H_

#include <string>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "tensorpager/block_name.h"

namespace tensorpager::internal {

inline constexpr absl::string_view kDefaultNamespace = "default";

struct BlockIdView {
  absl::string_view ns;
  absl::string_view id;

  explicit BlockIdView(const BlockName& name)
      : ns(name.ns.empty() ? kDefaultNamespace : absl::string_view(name.ns)),
        id(name.id) {}
  BlockIdView(absl::string_view ns, absl::string_view id) : ns(ns), id(id) {}
};

struct BlockId {
  std::string ns;
  std::string id;

  explicit BlockId(BlockIdView v) : ns(v.ns), id(v.id) {}
  BlockIdView view() const { return BlockIdView(ns, id); }
  BlockName name() const { return BlockName(ns, id); }
  std::string ToString() const { return absl::StrCat(ns, "/", id); }
};

// Transparent hash and equality, so lookups take a BlockIdView.
struct BlockIdHash {
  using is_transparent = void;
  size_t operator()(BlockIdView v) const { return absl::HashOf(v.ns, v.id); }
  size_t operator()(const BlockId& b) const { return (*this)(b.view()); }
};

struct BlockIdEq {
  using is_transparent = void;
  static BlockIdView View(BlockIdView v) { return v; }
  static BlockIdView View(const BlockId& b) { return b.view(); }
  template <typename A, typename B>
  bool operator()(const A& a, const B& b) const {
    const BlockIdView x = View(a);
    const BlockIdView y = View(b);
    return x.ns == y.ns && x.id == y.id;
  }
};

}  // namespace tensorpager::internal

#endif  // TENSORPAGER_CLIENT_SDK_SRC_BLOCK_ID_H_
