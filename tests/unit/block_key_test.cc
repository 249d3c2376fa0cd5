#include "storage/block_key.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace tensorpager::storage
