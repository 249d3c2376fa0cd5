#include "storage/encryption.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace tensorpager::storage {
namespace {

struct CipherFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using Cipher = std::unique_ptr<EVP_CIPHER_CTX, CipherFree>;

bool IsIdChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' ||
         c == '-';
}

const unsigned char* Bytes(absl::Span<const std::byte> s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// OpenSSL takes int lengths: GCM runs over at most 2^31 - 1 bytes per
// update, so longer images go in steps.
bool Update(EVP_CIPHER_CTX* c, bool encrypt, const unsigned char* in,
            unsigned char* out, size_t n) {
  constexpr size_t kStep = 1u << 30;
  while (n > 0) {
    const int step = static_cast<int>(std::min(n, kStep));
    int written = 0;
    const int ok = encrypt ? EVP_EncryptUpdate(c, out, &written, in, step)
                           : EVP_DecryptUpdate(c, out, &written, in, step);
    if (ok != 1 || written != step) return false;
    in += step;
    out += step;
    n -= step;
  }
  return true;
}

Cipher Start(const KeyRing::Key& key, absl::string_view nonce,
             absl::Span<const std::byte> aad, bool encrypt) {
  Cipher c(EVP_CIPHER_CTX_new());
  if (c == nullptr) return nullptr;
  const auto* iv = reinterpret_cast<const unsigned char*>(nonce.data());
  const int ok = encrypt ? EVP_EncryptInit_ex(c.get(), EVP_aes_256_gcm(),
                                              nullptr, key.bytes.data(), iv)
                         : EVP_DecryptInit_ex(c.get(), EVP_aes_256_gcm(),
                                              nullptr, key.bytes.data(), iv);
  int unused = 0;
  if (ok != 1 || nonce.size() != kGcmNonceBytes ||
      (encrypt ? EVP_EncryptUpdate(c.get(), nullptr, &unused, Bytes(aad),
                                   static_cast<int>(aad.size()))
               : EVP_DecryptUpdate(c.get(), nullptr, &unused, Bytes(aad),
                                   static_cast<int>(aad.size()))) != 1) {
    return nullptr;
  }
  return c;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const KeyRing>> KeyRing::Parse(
    absl::string_view text, absl::string_view source) {
  auto ring = std::make_shared<KeyRing>();
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line.substr(0, line.find('#')));
    if (line.empty()) continue;
    const std::vector<absl::string_view> parts =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    const std::string where = absl::StrCat(source, ":", line_number);
    if (parts.size() != 2) {
      return absl::InvalidArgumentError(
          absl::StrCat(where,
                       ": expected '<id> <64 hex digits>' (make a key with: "
                       "openssl rand -hex 32)"));
    }
    Key key;
    key.id = std::string(parts[0]);
    if (key.id.size() > 16 ||
        !std::all_of(key.id.begin(), key.id.end(), IsIdChar)) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": key id '", key.id, "' is not 1 to 16 of A-Z a-z 0-9 _ -"));
    }
    if (parts[1].size() != 64) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": key '", key.id, "' has ", parts[1].size(),
                       " hex digits; an AES-256 key has 64"));
    }
    if (!std::all_of(parts[1].begin(), parts[1].end(), [](char c) {
          return absl::ascii_isxdigit(static_cast<unsigned char>(c));
        })) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": key '", key.id, "' is not hexadecimal"));
    }
    const std::string bytes = absl::HexStringToBytes(parts[1]);
    std::memcpy(key.bytes.data(), bytes.data(), key.bytes.size());
    if (ring->Find(key.id) != nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": key id '", key.id, "' is listed twice"));
    }
    ring->keys_.push_back(std::move(key));
  }
  if (ring->keys_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, " lists no key; add a line '<id> <64 hex digits>'"));
  }
  return ring;
}

absl::StatusOr<std::shared_ptr<const KeyRing>> KeyRing::Load(
    const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(absl::StrCat(
        "cannot read the encryption key file ", path,
        "; check --encryption_key_file and the file's permissions"));
  }
  std::stringstream text;
  text << in.rdbuf();
  return Parse(text.str(), path);
}

const KeyRing::Key* KeyRing::Find(absl::string_view id) const {
  for (const Key& k : keys_) {
    if (k.id == id) return &k;
  }
  return nullptr;
}

std::string NewNonce() {
  std::string nonce(kGcmNonceBytes, '\0');
  // RAND_bytes fails only without entropy, which OpenSSL treats as fatal
  // at start; a zero nonce would then repeat, so refuse to go on.
  if (RAND_bytes(reinterpret_cast<unsigned char*>(nonce.data()),
                 static_cast<int>(nonce.size())) != 1) {
    std::abort();
  }
  return nonce;
}

absl::Status Seal(const KeyRing::Key& key, absl::string_view nonce,
                  absl::Span<const std::byte> aad,
                  absl::Span<const std::byte> plain,
                  absl::Span<std::byte> out) {
  if (out.size() < plain.size() + kGcmTagBytes) {
    return absl::InternalError("encryption output buffer too small");
  }
  Cipher c = Start(key, nonce, aad, /*encrypt=*/true);
  auto* dst = reinterpret_cast<unsigned char*>(out.data());
  int final_bytes = 0;
  if (c == nullptr || !Update(c.get(), true, Bytes(plain), dst, plain.size()) ||
      EVP_EncryptFinal_ex(c.get(), dst + plain.size(), &final_bytes) != 1 ||
      EVP_CIPHER_CTX_ctrl(c.get(), EVP_CTRL_GCM_GET_TAG,
                          static_cast<int>(kGcmTagBytes),
                          dst + plain.size()) != 1) {
    return absl::InternalError("AES-256-GCM encryption failed (OpenSSL)");
  }
  return absl::OkStatus();
}

absl::Status Open(const KeyRing::Key& key, absl::string_view nonce,
                  absl::Span<const std::byte> aad,
                  absl::Span<const std::byte> sealed,
                  absl::Span<std::byte> out) {
  if (sealed.size() < kGcmTagBytes ||
      out.size() < sealed.size() - kGcmTagBytes) {
    return absl::DataLossError("encrypted copy shorter than its tag");
  }
  const size_t n = sealed.size() - kGcmTagBytes;
  // The tag is read before the bytes it follows may be overwritten.
  std::array<unsigned char, kGcmTagBytes> tag;
  std::memcpy(tag.data(), Bytes(sealed) + n, kGcmTagBytes);
  Cipher c = Start(key, nonce, aad, /*encrypt=*/false);
  auto* dst = reinterpret_cast<unsigned char*>(out.data());
  int final_bytes = 0;
  if (c == nullptr || !Update(c.get(), false, Bytes(sealed), dst, n) ||
      EVP_CIPHER_CTX_ctrl(c.get(), EVP_CTRL_GCM_SET_TAG,
                          static_cast<int>(kGcmTagBytes), tag.data()) != 1 ||
      EVP_DecryptFinal_ex(c.get(), dst + n, &final_bytes) != 1) {
    return absl::DataLossError(
        absl::StrCat("its AES-GCM tag does not match (damaged, moved, or key '",
                     key.id, "' is not the one it was written with)"));
  }
  return absl::OkStatus();
}

}  // namespace tensorpager::storage
