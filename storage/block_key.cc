#include "storage/block_key.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace tensorpager::storage {
namespace {

bool AllPrintable(absl::string_view s) {
  for (char c : s) {
    if (!absl::ascii_isprint(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

absl::Status ValidateBlockId(absl::string_view id) {
  if (id.empty()) {
    return absl::InvalidArgumentError(
        "block id is empty; give each block a "
        "name of 1 to 256 printable characters");
  }
  if (id.size() > kMaxIdBytes) {
    return absl::InvalidArgumentError(absl::StrCat("block id is ", id.size(),
                                                   " bytes; the limit is ",
                                                   kMaxIdBytes, " bytes"));
  }
  if (!AllPrintable(id)) {
    return absl::InvalidArgumentError(
        "block id holds a non-printable byte; use printable ASCII only");
  }
  return absl::OkStatus();
}

absl::Status ValidateNamespace(absl::string_view ns) {
  if (ns.size() > kMaxNamespaceBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("namespace is ", ns.size(), " bytes; the limit is ",
                     kMaxNamespaceBytes, " bytes"));
  }
  if (!AllPrintable(ns)) {
    return absl::InvalidArgumentError(
        "namespace holds a non-printable byte; use printable ASCII only");
  }
  return absl::OkStatus();
}

absl::StatusOr<BlockKey> BlockKey::Make(absl::string_view ns,
                                        absl::string_view id) {
  if (absl::Status s = ValidateNamespace(ns); !s.ok()) return s;
  if (absl::Status s = ValidateBlockId(id); !s.ok()) return s;
  return BlockKey{ns.empty() ? std::string(kDefaultNamespace) : std::string(ns),
                  std::string(id)};
}

std::string BlockKey::Encode() const {
  std::string out;
  out.reserve(ns.size() + 1 + id.size());
  out.append(ns);
  out.push_back('\0');
  out.append(id);
  return out;
}

absl::StatusOr<BlockKey> BlockKey::Decode(absl::string_view encoded) {
  const size_t nul = encoded.find('\0');
  if (nul == absl::string_view::npos) {
    return absl::InvalidArgumentError("malformed block key");
  }
  return BlockKey::Make(encoded.substr(0, nul), encoded.substr(nul + 1));
}

}  // namespace tensorpager::storage
