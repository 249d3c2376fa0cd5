// Pins the conversions between the service's enums and the public proto's:
// every proto value round-trips (or is refused, for *_UNSPECIFIED), names
// agree on both sides, and unknown numbers are refused.
#include "server/proto_enums.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "google/protobuf/descriptor.h"

namespace tensorpager::server {
namespace {

// Calls check(value, name) for every value of proto enum P but
// *_UNSPECIFIED, and expects FromProto to refuse *_UNSPECIFIED (unless
// `unspecified_maps`) and a number the enum does not have.
template <typename P, typename Check>
void ForEachValue(const google::protobuf::EnumDescriptor* d,
                  bool unspecified_maps, Check check) {
  for (int i = 0; i < d->value_count(); ++i) {
    const google::protobuf::EnumValueDescriptor* v = d->value(i);
    const P value = static_cast<P>(v->number());
    if (absl::EndsWith(v->name(), "UNSPECIFIED") && !unspecified_maps) {
      EXPECT_FALSE(FromProto(value).has_value()) << v->name();
      continue;
    }
    SCOPED_TRACE(v->name());
    ASSERT_TRUE(FromProto(value).has_value());
    EXPECT_EQ(ToProto(*FromProto(value)), value);
    check(*FromProto(value), std::string(v->name()));
  }
  EXPECT_FALSE(FromProto(static_cast<P>(d->value_count() + 40)).has_value());
}

std::string Lower(absl::string_view name, absl::string_view prefix) {
  absl::ConsumePrefix(&name, prefix);
  return absl::AsciiStrToLower(name);
}

TEST(ProtoEnumsTest, RegionTypesRoundTripUnderTheirNames) {
  ForEachValue<v1::RegionType>(
      v1::RegionType_descriptor(), false,
      [](storage::RegionType t, const std::string& name) {
        EXPECT_EQ(storage::RegionTypeName(t), name);
      });
}

TEST(ProtoEnumsTest, TiersRoundTripUnderTheirNames) {
  ForEachValue<v1::Tier>(
      v1::Tier_descriptor(), false,
      [](storage::Tier t, const std::string& name) {
        EXPECT_EQ(std::string("TIER_") + storage::TierName(t), name);
      });
}

TEST(ProtoEnumsTest, CompressionsRoundTripUnderTheirNames) {
  ForEachValue<v1::Compression>(v1::Compression_descriptor(), false,
                                [](storage::Codec c, const std::string& name) {
                                  EXPECT_EQ(storage::CodecName(c),
                                            Lower(name, "COMPRESSION_"));
                                });
}

TEST(ProtoEnumsTest, EveryDTypeRoundTripsAndHasItsElementSize) {
  int known = 0;
  ForEachValue<v1::DType>(
      v1::DType_descriptor(), true,
      [&](storage::DType d, const std::string& name) {
        ++known;
        const uint32_t bytes = storage::ElementBytes(d);
        if (name == "DTYPE_UNSPECIFIED") {
          EXPECT_EQ(bytes, 0u);
        } else if (name == "BOOL" || absl::StrContains(name, "INT8") ||
                   absl::StartsWith(name, "FLOAT8")) {
          EXPECT_EQ(bytes, 1u);
        } else {
          // FLOAT32, BFLOAT16, INT64, ...: the width is in the name.
          const int bits = 8 * static_cast<int>(bytes);
          EXPECT_TRUE(absl::EndsWith(name, std::to_string(bits))) << bytes;
        }
      });
  EXPECT_EQ(known, storage::kNumDTypes);
  // A number no DType names (a damaged record) is reported as it is.
  EXPECT_EQ(ToProto(static_cast<storage::DType>(77)), 77);
  EXPECT_EQ(storage::ElementBytes(static_cast<storage::DType>(77)), 0u);
}

TEST(ProtoEnumsTest, AlgorithmsRoundTripUnderTheirNames) {
  ForEachValue<v1::Algorithm>(
      v1::Algorithm_descriptor(), false,
      [](policy::Algorithm a, const std::string& name) {
        EXPECT_EQ(policy::AlgorithmName(a), name);
        // The SDK maps its option to a policy by this name.
        policy::Algorithm parsed = policy::Algorithm::kLru;
        EXPECT_TRUE(policy::ParseAlgorithm(name, &parsed));
        EXPECT_EQ(parsed, a);
      });
}

TEST(ProtoEnumsTest, PressureLevelsRoundTripUnderTheirNames) {
  ForEachValue<v1::PressureLevel>(v1::PressureLevel_descriptor(), false,
                                  [](PressureLevel l, const std::string& name) {
                                    EXPECT_EQ(PressureLevelName(l), name);
                                  });
}

}  // namespace
}  // namespace tensorpager::server
