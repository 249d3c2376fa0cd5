// Encryption at rest of the NVMe tier: AES-256-GCM over each stored image
// (the block's bytes, or their compressed image), with a fresh 96-bit
// nonce per write and the extent's place as associated data, so a copy
// moved to another extent fails its tag. The GCM tag is also the copy's
// integrity check. Plaintext never reaches the drive: images are
// encrypted in RAM before the write.
//
// Keys come from a key file (--encryption_key_file), one per line:
//   <id> <64 hex digits>      # id: 1 to 16 of [A-Za-z0-9_-]
// The first key encrypts new copies; every key listed decrypts, so a new
// key goes first and old ones stay until their copies are rewritten.
#ifndef TENSORPAGER_STORAGE_ENCRYPTION_H_
#define TENSORPAGER_STORAGE_ENCRYPTION_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace tensorpager::storage {

inline constexpr size_t kGcmNonceBytes = 12;
inline constexpr size_t kGcmTagBytes = 16;

class KeyRing {
 public:
  struct Key {
    std::string id;
    std::array<unsigned char, 32> bytes;
  };
  // `text` in the key-file format; `source` names it in errors.
  static absl::StatusOr<std::shared_ptr<const KeyRing>> Parse(
      absl::string_view text, absl::string_view source);
  static absl::StatusOr<std::shared_ptr<const KeyRing>> Load(
      const std::string& path);

  // The key new copies are encrypted with.
  const Key& current() const { return keys_.front(); }
  // The key `id`, or null.
  const Key* Find(absl::string_view id) const;

 private:
  std::vector<Key> keys_;
};

// A fresh random nonce (OpenSSL's CSPRNG).
std::string NewNonce();

// Encrypts `plain` into the front of `out` (at least plain.size() +
// kGcmTagBytes bytes): ciphertext, then the tag.
absl::Status Seal(const KeyRing::Key& key, absl::string_view nonce,
                  absl::Span<const std::byte> aad,
                  absl::Span<const std::byte> plain, absl::Span<std::byte> out);
// Decrypts `sealed` (ciphertext then tag) into `out` (its size minus the
// tag); `out` may be `sealed` itself. DATA_LOSS when the tag does not
// match (a damaged or moved copy, or the wrong key).
absl::Status Open(const KeyRing::Key& key, absl::string_view nonce,
                  absl::Span<const std::byte> aad,
                  absl::Span<const std::byte> sealed,
                  absl::Span<std::byte> out);

}  // namespace tensorpager::storage

#endif  // TENSORPAGER_STORAGE_ENCRYPTION_H_
