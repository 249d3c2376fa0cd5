#include "storage/base/block_key.h"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "storage/checksum.h"

namespace tensorpager::storage {
namespace {

TEST(BlockKeyTest, EmptyNamespaceIsDefault) {
  auto k = BlockKey::Make("", "x");
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->ns, "default");
  EXPECT_EQ(k->ToString(), "default/x");
}

TEST(BlockKeyTest, EncodeDecodeRoundTripsAndOrdersByNamespace) {
  auto a = *BlockKey::Make("a", "zzz");
  auto b = *BlockKey::Make("ab", "a");
  EXPECT_LT(a.Encode(), b.Encode());
  auto back = BlockKey::Decode(b.Encode());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, b);
  EXPECT_FALSE(BlockKey::Decode("no-separator").ok());
}

TEST(BlockKeyTest, RejectsBadIdsWithActionableMessages) {
  EXPECT_EQ(BlockKey::Make("", "").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(BlockKey::Make("", std::string(256, 'a')).ok());
  auto too_long = BlockKey::Make("", std::string(257, 'a'));
  EXPECT_NE(too_long.status().message().find("256"), std::string::npos);
  EXPECT_FALSE(BlockKey::Make("", "line\nbreak").ok());
  EXPECT_FALSE(BlockKey::Make("bad\x01", "x").ok());
}

TEST(BlockKeyTest, ViewsCheckAndResolveAsKeysDo) {
  for (const auto& [ns, id] : std::vector<std::pair<std::string, std::string>>{
           {"", "x"},
           {"n", ""},
           {"", std::string(kMaxIdBytes + 1, 'a')},
           {std::string(kMaxNamespaceBytes + 1, 'n'), "x"},
           {"bad\x01", "x"},
           {"n", std::string("nul\0", 4)}}) {
    const absl::StatusOr<BlockKey> key = BlockKey::Make(ns, id);
    const absl::StatusOr<BlockKeyView> view = BlockKeyView::Make(ns, id);
    ASSERT_EQ(key.status(), view.status());
    if (key.ok()) {
      EXPECT_EQ(BlockKey(*view), *key);
    }
  }
  EXPECT_EQ(BlockKeyView::Resolve("", "x").ns, kDefaultNamespace);
  EXPECT_EQ(BlockKeyView::Resolve("", "x").Encode(),
            BlockKey::Make("", "x")->Encode());
}

TEST(BlockKeyTest, LookupsByViewFindKeys) {
  absl::flat_hash_set<BlockKey, BlockKeyHash, BlockKeyEq> keys;
  keys.insert(*BlockKey::Make("", "a"));
  EXPECT_TRUE(keys.contains(BlockKeyView("default", "a")));
  EXPECT_FALSE(keys.contains(BlockKeyView("other", "a")));
  EXPECT_EQ(BlockKeyHash()(*BlockKey::Make("", "a")),
            BlockKeyHash()(BlockKeyView("default", "a")));
}

TEST(ChecksumTest, DetectsSingleBitFlips) {
  std::string data(1 << 16, 'q');
  const auto span = [&] {
    return absl::Span<const std::byte>(
        reinterpret_cast<const std::byte*>(data.data()), data.size());
  };
  const uint64_t original = Checksum(span());
  EXPECT_EQ(Checksum(span()), original);
  for (size_t pos : {size_t{0}, data.size() / 2, data.size() - 1}) {
    data[pos] ^= 1;
    EXPECT_NE(Checksum(span()), original) << pos;
    data[pos] ^= 1;
  }
}

TEST(ChecksumTest, IsXxh3SixtyFourWhateverTheVectorUnit) {
  // Records written by earlier servers hold XXH3-64 values: the one the
  // vector unit dispatch computes must be the same, at every size class
  // of XXH3 (up to 16, 128, 240 bytes, and long inputs in stripes).
  EXPECT_EQ(Checksum({}), 0x2D06800538D394C2ull);  // the spec's empty input
  std::string data(1 << 20, '\0');
  uint64_t x = 1;
  for (char& c : data) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    c = static_cast<char>(x >> 56);
  }
  for (size_t size :
       {size_t{1}, size_t{3}, size_t{16}, size_t{17}, size_t{128}, size_t{129},
        size_t{240}, size_t{241}, size_t{1024}, size_t{65537}, data.size()}) {
    EXPECT_EQ(Checksum(absl::Span<const std::byte>(
                  reinterpret_cast<const std::byte*>(data.data()), size)),
              XXH3_64bits(data.data(), size))
        << size;
  }
}

}  // namespace
}  // namespace tensorpager::storage
