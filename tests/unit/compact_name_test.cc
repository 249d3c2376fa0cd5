// compact_name: the form an index entry keeps a block's name in. It must
// read back as the name, match only the name, and order as the encoded
// names order, whichever form each name takes.
#include "storage/compact_name.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"

namespace tensorpager::storage {
namespace {

std::string Compact(const BlockKey& key) {
  std::string out;
  compact_name::Append(key, &out);
  return out;
}

int Sign(int v) { return (v > 0) - (v < 0); }

// Names of every form side by side: even-length lowercase hex (packed),
// odd-length hex, upper case, other text, ids that are prefixes of others,
// and namespaces that are prefixes of others.
std::vector<BlockKey> MixedKeys() {
  std::mt19937 rng(7);
  const std::string alphabet = "0123456789abcdefAg-z";
  std::vector<BlockKey> keys;
  for (const char* ns : {"a", "ab", "t", "t0"}) {
    for (int i = 0; i < 400; ++i) {
      std::string id(1 + rng() % 6, '0');
      // Mostly hex digits, so packed and raw ids share prefixes.
      for (char& c : id) {
        c = alphabet[rng() % (rng() % 4 == 0 ? alphabet.size() : 16)];
      }
      keys.emplace_back(ns, id);
    }
  }
  return keys;
}

TEST(CompactNameTest, HexIdsOfEvenLengthTakeHalfTheBytes) {
  const BlockKey sha("default", std::string(64, 'f'));
  EXPECT_EQ(compact_name::Size(sha), 7 + 1 + 32);
  for (const char* id : {"abc", "ABCD", "0x12", "page-7"}) {
    const BlockKey key("default", id);
    EXPECT_EQ(compact_name::Size(key), key.Encode().size()) << id;
  }
}

TEST(CompactNameTest, ReadsBackAsTheName) {
  for (const BlockKey& key : MixedKeys()) {
    const std::string compact = Compact(key);
    EXPECT_EQ(compact_name::Key(compact).Encode(), key.Encode());
    EXPECT_EQ(compact_name::ToEncoded(compact), key.Encode());
    EXPECT_EQ(compact_name::Namespace(compact), key.ns);
    EXPECT_EQ(compact_name::Id(compact), key.id);
    EXPECT_EQ(compact_name::FromEncoded(key.Encode()), compact);
    EXPECT_EQ(compact_name::Buffer(key).view(), compact);
    std::string written(compact_name::Size(key), '?');
    compact_name::Write(key, written.size(), written.data());
    EXPECT_EQ(written, compact);
  }
}

TEST(CompactNameTest, OrdersAsTheEncodedNames) {
  std::vector<BlockKey> keys = MixedKeys();
  for (size_t i = 0; i + 1 < keys.size(); i += 3) {
    const BlockKey& a = keys[i];
    for (size_t j = 0; j < keys.size(); j += 7) {
      const BlockKey& b = keys[j];
      ASSERT_EQ(Sign(compact_name::Compare(Compact(a), Compact(b))),
                Sign(a.Encode().compare(b.Encode())))
          << a.ToString() << " vs " << b.ToString();
    }
  }
}

TEST(CompactNameTest, PrefixesSearchAndMatchAsTheEncodedNames) {
  const std::vector<BlockKey> keys = MixedKeys();
  // Also forged ones (a page token is the client's to send): a separator
  // byte in the namespace part must not read as one.
  std::vector<std::string> prefixes = {"",
                                       "a",
                                       "ab",
                                       "t0",
                                       "a",
                                       "t",
                                       std::string("a\1b", 3),
                                       std::string("t\1\0ab", 5)};
  for (const BlockKey& key : keys) {
    const std::string encoded = key.Encode();
    prefixes.push_back(
        encoded.substr(0, key.ns.size() + 1 + key.id.size() / 2));
  }
  for (const std::string& prefix : prefixes) {
    const std::string searched = compact_name::FromEncoded(prefix);
    for (const BlockKey& key : keys) {
      const std::string encoded = key.Encode();
      const std::string compact = Compact(key);
      ASSERT_EQ(Sign(compact_name::Compare(searched, compact)),
                Sign(std::string(prefix).compare(encoded)))
          << key.ToString() << " against " << prefix;
      ASSERT_EQ(compact_name::StartsWith(compact, prefix),
                absl::StartsWith(encoded, prefix))
          << key.ToString() << " against " << prefix;
    }
  }
  for (const BlockKey& key : keys) {
    for (const char* id_prefix : {"", "a", "ab", "0", "A", "abc", "ab-"}) {
      EXPECT_EQ(compact_name::IdStartsWith(Compact(key), id_prefix),
                absl::StartsWith(key.id, id_prefix))
          << key.ToString() << " against " << id_prefix;
    }
  }
}

TEST(CompactNameTest, KeysThatCannotBeValidMatchNothing) {
  // A separator byte in an unchecked namespace would otherwise spell a
  // packed name of another namespace.
  const BlockKeyView forged(absl::string_view("a\1\xab", 3), "00");
  EXPECT_TRUE(compact_name::Buffer(forged).view().empty());
  const std::string long_id(compact_name::kMaxBytes, 'x');
  EXPECT_TRUE(
      compact_name::Buffer(BlockKeyView("default", long_id)).view().empty());
}

}  // namespace
}  // namespace tensorpager::storage
