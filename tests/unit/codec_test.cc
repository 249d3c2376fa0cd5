#include "storage/codec.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>

#include "tests/testing/tensor_bytes.h"

namespace tensorpager::storage {
namespace {

absl::Span<const std::byte> Bytes(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

std::string RandomBytes(uint64_t n, uint64_t seed) {
  std::string s(n, '\0');
  std::mt19937_64 rng(seed);
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

std::string RoundTrip(const CompressedImage& image, uint64_t size) {
  std::string out(size, '\0');
  absl::Status s =
      Decompress(image.codec, image.bytes.span(),
                 {reinterpret_cast<std::byte*>(out.data()), out.size()});
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

TEST(CodecTest, ParsesNamesCaseInsensitively) {
  Codec c;
  EXPECT_TRUE(ParseCodec("LZ4", &c));
  EXPECT_EQ(c, Codec::kLz4);
  EXPECT_TRUE(ParseCodec("zstd", &c));
  EXPECT_EQ(c, Codec::kZstd);
  EXPECT_TRUE(ParseCodec("none", &c));
  EXPECT_EQ(c, Codec::kNone);
  EXPECT_FALSE(ParseCodec("brotli", &c));
  EXPECT_STREQ(CodecName(Codec::kZstd), "zstd");
}

TEST(CodecTest, ShuffledBf16TensorsCompressAndRoundTrip) {
  const std::string data = testing::Bf16TensorBytes(4 << 20, 7);
  for (Codec codec : {Codec::kLz4, Codec::kZstd}) {
    CompressionSettings settings{codec, 1, 1.1};
    std::optional<CompressedImage> image = Compress(Bytes(data), 2, settings);
    ASSERT_TRUE(image.has_value()) << CodecName(codec);
    EXPECT_EQ(image->codec, std::string(CodecName(codec)) + "+shuffle2");
    EXPECT_LT(image->bytes.size() * 1.1, data.size()) << image->codec;
    EXPECT_TRUE(RoundTrip(*image, data.size()) == data) << image->codec;
  }
}

TEST(CodecTest, ShuffleHelpsFloatTensors) {
  const std::string data = testing::Bf16TensorBytes(1 << 20, 8);
  CompressionSettings settings{Codec::kLz4, 1, 1.0};
  auto shuffled = Compress(Bytes(data), 2, settings);
  auto plain = Compress(Bytes(data), 1, settings);
  ASSERT_TRUE(shuffled.has_value());
  const uint64_t plain_size = plain ? plain->bytes.size() : data.size();
  EXPECT_LT(shuffled->bytes.size(), plain_size);
  if (plain) {
    EXPECT_EQ(plain->codec, "lz4");
  }
}

TEST(CodecTest, IncompressibleDataIsLeftRaw) {
  const std::string data = RandomBytes(2 << 20, 9);
  for (Codec codec : {Codec::kLz4, Codec::kZstd}) {
    EXPECT_FALSE(Compress(Bytes(data), 2, {codec, 1, 1.1}).has_value());
  }
  const std::string small = RandomBytes(64 << 10, 10);  // below the sample
  EXPECT_FALSE(Compress(Bytes(small), 4, {Codec::kLz4, 1, 1.1}).has_value());
}

TEST(CodecTest, NoneNeverCompresses) {
  const std::string zeros(1 << 20, '\0');
  EXPECT_FALSE(Compress(Bytes(zeros), 1, {Codec::kNone, 1, 1.1}).has_value());
  auto lz4 = Compress(Bytes(zeros), 1, {Codec::kLz4, 1, 1.1});
  ASSERT_TRUE(lz4.has_value());
  EXPECT_LT(lz4->bytes.size(), 64u << 10);
}

TEST(CodecTest, MinRatioDecides) {
  const std::string data = testing::Bf16TensorBytes(1 << 20, 11);
  auto image = Compress(Bytes(data), 2, {Codec::kZstd, 1, 1.0});
  ASSERT_TRUE(image.has_value());
  const double ratio = static_cast<double>(data.size()) /
                       static_cast<double>(image->bytes.size());
  EXPECT_FALSE(Compress(Bytes(data), 2, {Codec::kZstd, 1, ratio * 1.2}));
  EXPECT_TRUE(Compress(Bytes(data), 2, {Codec::kZstd, 1, ratio * 0.9}));
}

TEST(CodecTest, OddSizesAndWideElementsRoundTrip) {
  std::string data = testing::Bf16TensorBytes(300001 * 4, 12);
  data.resize(data.size() - 3);  // not a multiple of the element size
  auto image = Compress(Bytes(data), 4, {Codec::kLz4, 5, 1.0});
  ASSERT_TRUE(image.has_value());
  EXPECT_EQ(image->codec, "lz4+shuffle4");
  EXPECT_EQ(image->bytes.capacity() % base::kIoAlignment, 0u);
  EXPECT_TRUE(RoundTrip(*image, data.size()) == data);
}

TEST(CodecTest, DamagedImagesAreDataLoss) {
  const std::string data = testing::Bf16TensorBytes(1 << 20, 13);
  auto image = Compress(Bytes(data), 2, {Codec::kLz4, 1, 1.1});
  ASSERT_TRUE(image.has_value());
  std::string out(data.size(), '\0');
  auto out_span = absl::Span<std::byte>(
      reinterpret_cast<std::byte*>(out.data()), out.size());
  // Wrong logical size, truncated image, unknown codec.
  EXPECT_EQ(Decompress(image->codec, image->bytes.span(),
                       out_span.subspan(0, out.size() - 2))
                .code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(
      Decompress(image->codec, image->bytes.span().subspan(0, 100), out_span)
          .code(),
      absl::StatusCode::kDataLoss);
  EXPECT_EQ(Decompress("snappy", image->bytes.span(), out_span).code(),
            absl::StatusCode::kDataLoss);
}

TEST(CodecTest, SettingsAreValidated) {
  EXPECT_TRUE(ValidateCompressionSettings({Codec::kLz4, 1, 1.1}).ok());
  EXPECT_EQ(ValidateCompressionSettings({Codec::kLz4, 0, 1.1}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateCompressionSettings({Codec::kLz4, 10, 1.1}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateCompressionSettings({Codec::kLz4, 1, 0.5}).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tensorpager::storage
