// The identity of a block: (namespace, id). The id rules and the default
// namespace live here and nowhere else, so the service and the SDK (both
// link tp_block_key) reject the same inputs with the same messages.
//
// The vocabulary: tensorpager::BlockName (the SDK's public API, namespace
// may be empty) resolves to a BlockKey; BlockKeyView is a BlockKey that
// owns nothing, for lookups; policy::Handle is an eviction policy's number
// for a tracked entry, not an identity.
#ifndef TENSORPAGER_STORAGE_BASE_BLOCK_KEY_H_
#define TENSORPAGER_STORAGE_BASE_BLOCK_KEY_H_

#include <cstddef>
#include <string>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tensorpager::storage {

// What an empty namespace means.
inline constexpr absl::string_view kDefaultNamespace = "default";
inline constexpr size_t kMaxIdBytes = 256;
inline constexpr size_t kMaxNamespaceBytes = 64;

// INVALID_ARGUMENT unless `id` is 1 to kMaxIdBytes printable ASCII bytes.
absl::Status ValidateBlockId(absl::string_view id);
// INVALID_ARGUMENT unless `ns` is at most kMaxNamespaceBytes printable ASCII
// bytes (empty is allowed: it means kDefaultNamespace).
absl::Status ValidateNamespace(absl::string_view ns);

// A BlockKey's parts without owning them, so lookups allocate nothing.
// Valid while the strings it views live.
struct BlockKeyView {
  absl::string_view ns;  // resolved: never empty
  absl::string_view id;

  // Takes the parts as they are: the caller has resolved the namespace.
  constexpr BlockKeyView(absl::string_view ns, absl::string_view id)
      : ns(ns), id(id) {}

  // Checks both parts and resolves an empty namespace to kDefaultNamespace.
  static absl::StatusOr<BlockKeyView> Make(absl::string_view ns,
                                           absl::string_view id);
  // Resolves an empty namespace without checking anything: for lookups of
  // names that may never have been checked, where a miss is the answer.
  static BlockKeyView Resolve(absl::string_view ns, absl::string_view id) {
    return BlockKeyView(ns.empty() ? kDefaultNamespace : ns, id);
  }

  // "ns\0id", as BlockKey::Encode.
  std::string Encode() const;
  // The parts of an encoded key, checked as Make checks them.
  static absl::StatusOr<BlockKeyView> Decode(absl::string_view encoded);
  std::string ToString() const;
};

struct BlockKey {
  std::string ns;  // resolved: never empty
  std::string id;

  BlockKey() = default;
  BlockKey(std::string ns, std::string id)
      : ns(std::move(ns)), id(std::move(id)) {}
  explicit BlockKey(BlockKeyView v) : ns(v.ns), id(v.id) {}

  // Empty namespace means kDefaultNamespace. Checks both parts.
  static absl::StatusOr<BlockKey> Make(absl::string_view ns,
                                       absl::string_view id);

  BlockKeyView view() const { return BlockKeyView(ns, id); }
  // As std::string to std::string_view: calls that only read a key take a
  // view.
  operator BlockKeyView() const { return view(); }  // NOLINT

  // "ns\0id": unique because neither part may hold a NUL, and ordered by
  // namespace first, so listings page through one namespace contiguously.
  std::string Encode() const { return view().Encode(); }
  static absl::StatusOr<BlockKey> Decode(absl::string_view encoded);

  // "ns/id", for messages.
  std::string ToString() const { return view().ToString(); }

  friend bool operator==(const BlockKey&, const BlockKey&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const BlockKey& k) {
    return H::combine(std::move(h), k.ns, k.id);
  }
};

// Transparent hash and equality, so containers keyed by BlockKey take a
// BlockKeyView on lookups.
struct BlockKeyHash {
  using is_transparent = void;
  size_t operator()(BlockKeyView v) const { return absl::HashOf(v.ns, v.id); }
  size_t operator()(const BlockKey& k) const { return (*this)(k.view()); }
};

struct BlockKeyEq {
  using is_transparent = void;
  static BlockKeyView View(BlockKeyView v) { return v; }
  static BlockKeyView View(const BlockKey& k) { return k.view(); }
  template <typename A, typename B>
  bool operator()(const A& a, const B& b) const {
    const BlockKeyView x = View(a);
    const BlockKeyView y = View(b);
    return x.ns == y.ns && x.id == y.id;
  }
};

}  // namespace tensorpager::storage

#endif  // TENSORPAGER_STORAGE_BASE_BLOCK_KEY_H_
