#include "storage/base/block_key.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace tensorpager::storage {
namespace {

// Printable ASCII holds no NUL, which BlockKey::Encode uses as separator.
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
        absl::StrCat("block id is empty; give each block a name of 1 to ",
                     kMaxIdBytes, " printable characters"));
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

absl::StatusOr<BlockKeyView> BlockKeyView::Make(absl::string_view ns,
                                                absl::string_view id) {
  if (absl::Status s = ValidateNamespace(ns); !s.ok()) return s;
  if (absl::Status s = ValidateBlockId(id); !s.ok()) return s;
  return Resolve(ns, id);
}

std::string BlockKeyView::Encode() const {
  return absl::StrCat(ns, absl::string_view("\0", 1), id);
}

std::string BlockKeyView::ToString() const { return absl::StrCat(ns, "/", id); }

absl::StatusOr<BlockKey> BlockKey::Make(absl::string_view ns,
                                        absl::string_view id) {
  absl::StatusOr<BlockKeyView> view = BlockKeyView::Make(ns, id);
  if (!view.ok()) return view.status();
  return BlockKey(*view);
}

absl::StatusOr<BlockKeyView> BlockKeyView::Decode(absl::string_view encoded) {
  const size_t nul = encoded.find('\0');
  if (nul == absl::string_view::npos) {
    return absl::InvalidArgumentError("malformed block key");
  }
  return BlockKeyView::Make(encoded.substr(0, nul), encoded.substr(nul + 1));
}

absl::StatusOr<BlockKey> BlockKey::Decode(absl::string_view encoded) {
  const size_t nul = encoded.find('\0');
  if (nul == absl::string_view::npos) {
    return absl::InvalidArgumentError("malformed block key");
  }
  return BlockKey::Make(encoded.substr(0, nul), encoded.substr(nul + 1));
}

}  // namespace tensorpager::storage
