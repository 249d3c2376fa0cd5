#include "storage/base/byte_size.h"

#include <gtest/gtest.h>

namespace tensorpager::base {
namespace {

TEST(ByteSizeTest, ParsesUnits) {
  EXPECT_EQ(*ParseByteSize("4096"), 4096u);
  EXPECT_EQ(*ParseByteSize("64k"), 64u << 10);
  EXPECT_EQ(*ParseByteSize("64KiB"), 64u << 10);
  EXPECT_EQ(*ParseByteSize("2GiB"), 2ull << 30);
  EXPECT_EQ(*ParseByteSize(" 1.5 MiB "), 3ull << 19);
  EXPECT_EQ(*ParseByteSize("1T"), 1ull << 40);
}

TEST(ByteSizeTest, RejectsGarbage) {
  EXPECT_EQ(ParseByteSize("").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(ParseByteSize("lots").ok());
  EXPECT_FALSE(ParseByteSize("12 parsecs").ok());
  EXPECT_FALSE(ParseByteSize("-5").ok());
}

TEST(ByteSizeTest, FormatsReadably) {
  EXPECT_EQ(FormatByteSize(2ull << 30), "2GiB");
  EXPECT_EQ(FormatByteSize(4096), "4KiB");
  EXPECT_EQ(FormatByteSize(1000), "1000B");
  EXPECT_EQ(FormatByteSize(3 * (1ull << 30) + 1), "3.00GiB");
}

}  // namespace
}  // namespace tensorpager::base
