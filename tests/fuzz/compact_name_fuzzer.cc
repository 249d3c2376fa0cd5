// Fuzzes the compact names the block index keeps (storage/compact_name.h).
// Input: two encoded names "ns\0id" separated by the first 0xff byte (the
// second may be any string, also one without a NUL: a prefix, as a page
// token or a listing's prefix gives). The ordered index is only sound if
// compact names order exactly as the encoded names do, so that, the round
// trip and the prefix tests are checked against the encoded strings.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "storage/compact_name.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

namespace cn = tensorpager::storage::compact_name;
using tensorpager::storage::BlockKeyView;

int Sign(int v) { return (v > 0) - (v < 0); }

// The key an encoded name spells, when the index could hold it: its
// namespace is never empty and holds no byte below 2 (namespaces are
// printable ASCII).
bool AsKey(absl::string_view encoded, BlockKeyView* key) {
  const size_t nul = encoded.find('\0');
  if (nul == 0 || nul == absl::string_view::npos) return false;
  for (size_t i = 0; i < nul; ++i) {
    if (static_cast<unsigned char>(encoded[i]) < 2) return false;
  }
  *key = BlockKeyView(encoded.substr(0, nul), encoded.substr(nul + 1));
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t cut = input.find('\xff');
  const absl::string_view first = input.substr(0, cut);
  const absl::string_view second =
      cut == absl::string_view::npos ? "" : input.substr(cut + 1);

  BlockKeyView a("", "");
  if (!AsKey(first, &a)) return 0;
  std::string ca;
  cn::Append(a, &ca);
  TP_FUZZ_CHECK(ca.size() == cn::Size(a));
  TP_FUZZ_CHECK(ca.size() <= first.size());
  TP_FUZZ_CHECK(cn::ToEncoded(ca) == first);
  TP_FUZZ_CHECK(cn::FromEncoded(first) == ca);
  TP_FUZZ_CHECK(cn::Namespace(ca) == a.ns);
  TP_FUZZ_CHECK(cn::Id(ca) == a.id);
  TP_FUZZ_CHECK(cn::Compare(ca, ca) == 0);
  const cn::Buffer buffer(a);
  TP_FUZZ_CHECK(buffer.view().empty() || buffer.view() == ca);

  // The second string as a search key or a prefix of names.
  const std::string searched = cn::FromEncoded(second);
  TP_FUZZ_CHECK(Sign(cn::Compare(searched, ca)) == Sign(second.compare(first)));
  TP_FUZZ_CHECK(Sign(cn::Compare(ca, searched)) == Sign(first.compare(second)));
  TP_FUZZ_CHECK(cn::StartsWith(ca, second) == absl::StartsWith(first, second));
  TP_FUZZ_CHECK(cn::IdStartsWith(ca, second) == absl::StartsWith(a.id, second));

  // Two names: equal compact names exactly when the names are equal.
  BlockKeyView b("", "");
  if (AsKey(second, &b)) {
    std::string cb;
    cn::Append(b, &cb);
    TP_FUZZ_CHECK((ca == cb) == (first == second));
  }
  return 0;
}
