// The identity of a block: (namespace, id). Validation lives here so the
// service and the SDK reject the same inputs with the same messages.
#ifndef TENSORPAGER_STORAGE_BLOCK_KEY_H_
#define TENSORPAGER_STORAGE_BLOCK_KEY_H_

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tensorpager::storage {

inline constexpr absl::string_view kDefaultNamespace = "default";
inline constexpr size_t kMaxIdBytes = 256;
inline constexpr size_t kMaxNamespaceBytes = 64;

struct BlockKey {
  std::string ns;
  std::string id;

  // Empty namespace means kDefaultNamespace. Checks both parts.
  static absl::StatusOr<BlockKey> Make(absl::string_view ns,
                                       absl::string_view id);

  // "ns\0id": unique because neither part may hold a NUL, and ordered by
  // namespace first, so listings page through one namespace contiguously.
  std::string Encode() const;
  static absl::StatusOr<BlockKey> Decode(absl::string_view encoded);

  std::string ToString() const { return ns + "/" + id; }

  friend bool operator==(const BlockKey&, const BlockKey&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const BlockKey& k) {
    return H::combine(std::move(h), k.ns, k.id);
  }
};

absl::Status ValidateBlockId(absl::string_view id);
absl::Status ValidateNamespace(absl::string_view ns);

}  // namespace tensorpager::storage

#endif  // TENSORPAGER_STORAGE_BLOCK_KEY_H_
