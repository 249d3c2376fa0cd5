// A block's name as its index entry keeps it: the encoded name "ns\0id"
// (BlockKey::Encode), except that an id of lowercase hex digits of even
// length is kept as the bytes they spell, behind "ns\1". Engines key their
// pages by chained prefix hashes written as hex (a SHA-256 is 64 digits),
// so this halves the id of most blocks: 32 bytes less per block at tens of
// millions of blocks (docs/ARCHITECTURE.md, "Per-block memory").
//
// The compact form is a function of the name (a name has one form), so
// compact names are equal exactly when the names are, and hash as they
// are. Ordering is the names' order (Compare), so listings and prefix
// scans see blocks in the order of their encoded names, whichever form
// each is kept in. Namespaces are printable ASCII, so the first byte below
// 2 is the separator and says the form.
#ifndef TENSORPAGER_STORAGE_COMPACT_NAME_H_
#define TENSORPAGER_STORAGE_COMPACT_NAME_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"
#include "storage/base/block_key.h"

namespace tensorpager::storage::compact_name {

// The longest compact name of a valid key.
inline constexpr size_t kMaxBytes = kMaxNamespaceBytes + 1 + kMaxIdBytes;

// Bytes of the compact name of `key`.
size_t Size(BlockKeyView key);
// Writes the compact name of `key` to `out`: `size` bytes, which must be
// Size(key) (it tells the form, so the id is examined once).
void Write(BlockKeyView key, size_t size, char* out);
// Appends the compact name of `key` to `out`.
void Append(BlockKeyView key, std::string* out);
// The compact form of an encoded name, or of any prefix of one (a string
// without the NUL is a namespace or a part of one, kept as it is); its
// order among compact names is the encoded string's among names.
std::string FromEncoded(absl::string_view encoded);
// The encoded name "ns\0id" of a compact name.
std::string ToEncoded(absl::string_view compact);

absl::string_view Namespace(absl::string_view compact);
std::string Id(absl::string_view compact);
BlockKey Key(absl::string_view compact);

// Whether the encoded name of `compact` starts with `encoded_prefix`.
bool StartsWith(absl::string_view compact, absl::string_view encoded_prefix);
// Whether the id of `compact` starts with `id_prefix`.
bool IdStartsWith(absl::string_view compact, absl::string_view id_prefix);

// <0, 0 or >0 as the encoded names of `a` and `b` compare (either may
// also be the compact form of a prefix, FromEncoded).
int Compare(absl::string_view a, absl::string_view b);

// A compact name built on the stack, for point lookups that must not
// allocate. A key that cannot be valid (too long, or a separator byte in
// its namespace) gets an empty name, which no entry has.
class Buffer {
 public:
  explicit Buffer(BlockKeyView key);
  absl::string_view view() const { return absl::string_view(bytes_, size_); }

 private:
  char bytes_[kMaxBytes];
  size_t size_ = 0;
};

}  // namespace tensorpager::storage::compact_name

#endif  // TENSORPAGER_STORAGE_COMPACT_NAME_H_
