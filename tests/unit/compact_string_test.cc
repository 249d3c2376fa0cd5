// CompactString: 16 bytes of object for any bytes, inline up to 15.
#include "storage/compact_string.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace tensorpager::storage {
namespace {

std::string Bytes(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i * 37 + 1);
  return s;
}

TEST(CompactStringTest, KeepsEveryLengthAcrossTheInlineLimit) {
  for (size_t n : {size_t{0}, size_t{1}, size_t{6}, CompactString::kInline,
                   CompactString::kInline + 1, size_t{300}, size_t{5000}}) {
    const std::string bytes = Bytes(n);
    const CompactString s(bytes);
    EXPECT_EQ(s.size(), n);
    EXPECT_EQ(s.empty(), n == 0);
    EXPECT_EQ(s.view(), bytes) << n;
  }
}

TEST(CompactStringTest, CopiesAndMovesOwnTheirBytes) {
  for (size_t n : {size_t{6}, size_t{40}}) {
    const std::string bytes = Bytes(n);
    auto original = std::make_unique<CompactString>(bytes);
    CompactString copy(*original);
    CompactString assigned;
    assigned = *original;
    CompactString moved(std::move(*original));
    EXPECT_TRUE(original->empty());  // NOLINT: a moved-from one is empty
    original.reset();                // the copies outlive it
    EXPECT_EQ(copy.view(), bytes);
    EXPECT_EQ(assigned.view(), bytes);
    EXPECT_EQ(moved.view(), bytes);
    CompactString replaced(Bytes(100));
    replaced = std::move(moved);
    EXPECT_EQ(replaced.view(), bytes);
    replaced = CompactString();
    EXPECT_TRUE(replaced.empty());
  }
  std::vector<CompactString> grown;
  for (size_t n = 0; n < 64; ++n) grown.emplace_back(Bytes(n));
  for (size_t n = 0; n < 64; ++n) EXPECT_EQ(grown[n].view(), Bytes(n));
}

}  // namespace
}  // namespace tensorpager::storage
