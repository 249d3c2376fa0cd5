#include "storage/compact_name.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace tensorpager::storage::compact_name {
namespace {

constexpr char kRaw = '\0';
constexpr char kPacked = '\1';
constexpr char kDigits[] = "0123456789abcdef";

// Each byte's value as a lowercase hex digit, -1 for the others. Recovery
// packs every id it reads (ten million at a restart): a table and a loop
// without branches take a fifth of the time of comparisons per byte.
constexpr std::array<int8_t, 256> kNibble = [] {
  std::array<int8_t, 256> t{};
  t.fill(-1);
  for (int c = '0'; c <= '9'; ++c) t[c] = static_cast<int8_t>(c - '0');
  for (int c = 'a'; c <= 'f'; ++c) t[c] = static_cast<int8_t>(c - 'a' + 10);
  return t;
}();

int Nibble(char c) { return kNibble[static_cast<unsigned char>(c)]; }

bool Packable(absl::string_view id) {
  if (id.empty() || id.size() % 2 != 0) return false;
  int8_t any_not_hex = 0;  // the sign bit of -1
  for (char c : id) any_not_hex |= Nibble(c);
  return any_not_hex >= 0;
}

// A compact name taken apart: its namespace, and its id as the encoded
// name's characters, read one at a time.
struct Parts {
  explicit Parts(absl::string_view compact) {
    const auto sep = std::find_if(compact.begin(), compact.end(), [](char c) {
      return c == kRaw || c == kPacked;
    });
    ns = absl::string_view(compact.data(), sep - compact.begin());
    has_id = sep != compact.end();
    if (has_id) {
      packed = *sep == kPacked;
      id_bytes = compact.substr(ns.size() + 1);
    }
  }
  size_t id_size() const {
    return packed ? 2 * id_bytes.size() : id_bytes.size();
  }
  char id_char(size_t k) const {
    if (!packed) return id_bytes[k];
    const auto byte = static_cast<unsigned char>(id_bytes[k / 2]);
    return kDigits[k % 2 == 0 ? byte >> 4 : byte & 0xf];
  }
  std::string id() const {
    std::string out(id_size(), '\0');
    for (size_t k = 0; k < out.size(); ++k) out[k] = id_char(k);
    return out;
  }

  absl::string_view ns;
  bool has_id = false;
  bool packed = false;
  absl::string_view id_bytes;
};

int CompareIds(const Parts& a, const Parts& b) {
  const size_t n = std::min(a.id_size(), b.id_size());
  for (size_t k = 0; k < n; ++k) {
    // As std::string compares: bytes as unsigned.
    const auto x = static_cast<unsigned char>(a.id_char(k));
    const auto y = static_cast<unsigned char>(b.id_char(k));
    if (x != y) return x < y ? -1 : 1;
  }
  if (a.id_size() == b.id_size()) return 0;
  return a.id_size() < b.id_size() ? -1 : 1;
}

// Bytes of the compact name of ns + sep + id, and whether the id packs.
size_t SizeOf(absl::string_view ns, absl::string_view id, bool packed) {
  return ns.size() + 1 + (packed ? id.size() / 2 : id.size());
}

void WriteParts(absl::string_view ns, absl::string_view id, bool packed,
                char* out) {
  std::memcpy(out, ns.data(), ns.size());
  out += ns.size();
  *out++ = packed ? kPacked : kRaw;
  if (!packed) {
    std::memcpy(out, id.data(), id.size());
    return;
  }
  for (size_t k = 0; k < id.size(); k += 2) {
    *out++ = static_cast<char>(Nibble(id[k]) << 4 | Nibble(id[k + 1]));
  }
}

}  // namespace

size_t Size(BlockKeyView key) {
  return SizeOf(key.ns, key.id, Packable(key.id));
}

void Write(BlockKeyView key, size_t size, char* out) {
  WriteParts(key.ns, key.id, size < key.ns.size() + 1 + key.id.size(), out);
}

void Append(BlockKeyView key, std::string* out) {
  const bool packed = Packable(key.id);
  const size_t at = out->size();
  out->resize(at + SizeOf(key.ns, key.id, packed));
  WriteParts(key.ns, key.id, packed, out->data() + at);
}

std::string FromEncoded(absl::string_view encoded) {
  const size_t nul = encoded.find(kRaw);
  // A kPacked byte in the namespace part (a forged page token) would read
  // as a separator. The string orders after every name of the namespace
  // before that byte and before every longer namespace (their bytes are
  // printable), as the byte 2 does there.
  if (const size_t one = encoded.substr(0, nul).find(kPacked);
      one != absl::string_view::npos) {
    return absl::StrCat(encoded.substr(0, one), "\x02");
  }
  if (nul == absl::string_view::npos) return std::string(encoded);
  std::string out;
  Append(BlockKeyView(encoded.substr(0, nul), encoded.substr(nul + 1)), &out);
  return out;
}

std::string ToEncoded(absl::string_view compact) {
  const Parts parts(compact);
  if (!parts.has_id) return std::string(compact);
  std::string out(parts.ns);
  out.push_back(kRaw);
  out += parts.id();
  return out;
}

absl::string_view Namespace(absl::string_view compact) {
  return Parts(compact).ns;
}

std::string Id(absl::string_view compact) { return Parts(compact).id(); }

BlockKey Key(absl::string_view compact) {
  const Parts parts(compact);
  return BlockKey(std::string(parts.ns), parts.id());
}

bool StartsWith(absl::string_view compact, absl::string_view encoded_prefix) {
  const Parts parts(compact);
  const size_t nul = encoded_prefix.find(kRaw);
  if (nul == absl::string_view::npos) {
    return absl::StartsWith(parts.ns, encoded_prefix);
  }
  return parts.has_id && parts.ns == encoded_prefix.substr(0, nul) &&
         IdStartsWith(compact, encoded_prefix.substr(nul + 1));
}

bool IdStartsWith(absl::string_view compact, absl::string_view id_prefix) {
  const Parts parts(compact);
  if (!parts.has_id || parts.id_size() < id_prefix.size()) return false;
  for (size_t k = 0; k < id_prefix.size(); ++k) {
    if (parts.id_char(k) != id_prefix[k]) return false;
  }
  return true;
}

int Compare(absl::string_view a, absl::string_view b) {
  // Up to the first difference the two are alike, so both have passed
  // their separator or neither has. A difference after one separator form
  // compares as the names do: packed bytes order as the digit pairs they
  // spell. Only the two forms side by side need the ids read out.
  const size_t n = std::min(a.size(), b.size());
  const auto diff = std::mismatch(a.begin(), a.begin() + n, b.begin());
  if (diff.first == a.begin() + n) {
    if (a.size() == b.size()) return 0;
    return a.size() < b.size() ? -1 : 1;
  }
  const auto x = static_cast<unsigned char>(*diff.first);
  const auto y = static_cast<unsigned char>(*diff.second);
  if (x <= kPacked && y <= kPacked) return CompareIds(Parts(a), Parts(b));
  return x < y ? -1 : 1;
}

Buffer::Buffer(BlockKeyView key) {
  const bool packed = Packable(key.id);
  const size_t size = SizeOf(key.ns, key.id, packed);
  if (size > kMaxBytes) return;
  // A separator byte in an unchecked namespace would make a name that
  // reads as another one's.
  for (char c : key.ns) {
    if (c == kRaw || c == kPacked) return;
  }
  WriteParts(key.ns, key.id, packed, bytes_);
  size_ = size;
}

}  // namespace tensorpager::storage::compact_name
