#include "server/proto_enums.h"

namespace tensorpager::server {

v1::RegionType ToProto(storage::RegionType type) {
  switch (type) {
    case storage::RegionType::kTensorData:
      return v1::TENSOR_DATA;
    case storage::RegionType::kKvCache:
      return v1::KV_CACHE;
    case storage::RegionType::kActivation:
      return v1::ACTIVATION;
    case storage::RegionType::kWeight:
      return v1::WEIGHT;
    case storage::RegionType::kImageFeatures:
      return v1::IMAGE_FEATURES;
    case storage::RegionType::kTemporary:
      return v1::TEMPORARY;
  }
  return v1::REGION_TYPE_UNSPECIFIED;
}

std::optional<storage::RegionType> FromProto(v1::RegionType type) {
  static_assert(v1::RegionType_ARRAYSIZE == 7, "map the new region type");
  switch (type) {
    case v1::TENSOR_DATA:
      return storage::RegionType::kTensorData;
    case v1::KV_CACHE:
      return storage::RegionType::kKvCache;
    case v1::ACTIVATION:
      return storage::RegionType::kActivation;
    case v1::WEIGHT:
      return storage::RegionType::kWeight;
    case v1::IMAGE_FEATURES:
      return storage::RegionType::kImageFeatures;
    case v1::TEMPORARY:
      return storage::RegionType::kTemporary;
    default:
      return std::nullopt;
  }
}

v1::Tier ToProto(storage::Tier tier) {
  switch (tier) {
    case storage::Tier::kEmpty:
      return v1::TIER_EMPTY;
    case storage::Tier::kRam:
      return v1::TIER_RAM;
    case storage::Tier::kDisk:
      return v1::TIER_DISK;
    case storage::Tier::kRamAndDisk:
      return v1::TIER_RAM_AND_DISK;
    case storage::Tier::kLost:
      return v1::TIER_LOST;
  }
  return v1::TIER_UNSPECIFIED;
}

std::optional<storage::Tier> FromProto(v1::Tier tier) {
  static_assert(v1::Tier_ARRAYSIZE == 6, "map the new tier");
  switch (tier) {
    case v1::TIER_EMPTY:
      return storage::Tier::kEmpty;
    case v1::TIER_RAM:
      return storage::Tier::kRam;
    case v1::TIER_DISK:
      return storage::Tier::kDisk;
    case v1::TIER_RAM_AND_DISK:
      return storage::Tier::kRamAndDisk;
    case v1::TIER_LOST:
      return storage::Tier::kLost;
    default:
      return std::nullopt;
  }
}

v1::Compression ToProto(storage::Codec codec) {
  switch (codec) {
    case storage::Codec::kNone:
      return v1::COMPRESSION_NONE;
    case storage::Codec::kLz4:
      return v1::COMPRESSION_LZ4;
    case storage::Codec::kZstd:
      return v1::COMPRESSION_ZSTD;
  }
  return v1::COMPRESSION_UNSPECIFIED;
}

std::optional<storage::Codec> FromProto(v1::Compression compression) {
  static_assert(v1::Compression_ARRAYSIZE == 4, "map the new compression");
  switch (compression) {
    case v1::COMPRESSION_NONE:
      return storage::Codec::kNone;
    case v1::COMPRESSION_LZ4:
      return storage::Codec::kLz4;
    case v1::COMPRESSION_ZSTD:
      return storage::Codec::kZstd;
    default:
      return std::nullopt;
  }
}

v1::DType ToProto(storage::DType dtype) {
  switch (dtype) {
    case storage::DType::kUnspecified:
      return v1::DTYPE_UNSPECIFIED;
    case storage::DType::kFloat32:
      return v1::FLOAT32;
    case storage::DType::kFloat16:
      return v1::FLOAT16;
    case storage::DType::kBFloat16:
      return v1::BFLOAT16;
    case storage::DType::kFloat64:
      return v1::FLOAT64;
    case storage::DType::kInt8:
      return v1::INT8;
    case storage::DType::kUInt8:
      return v1::UINT8;
    case storage::DType::kInt16:
      return v1::INT16;
    case storage::DType::kInt32:
      return v1::INT32;
    case storage::DType::kInt64:
      return v1::INT64;
    case storage::DType::kBool:
      return v1::BOOL;
    case storage::DType::kFloat8E4M3:
      return v1::FLOAT8_E4M3;
    case storage::DType::kFloat8E5M2:
      return v1::FLOAT8_E5M2;
  }
  // A number no DType names comes from a damaged record: reported as it is
  // (proto3 enums are open), as the record holds it.
  return static_cast<v1::DType>(dtype);
}

std::optional<storage::DType> FromProto(v1::DType dtype) {
  static_assert(v1::DType_ARRAYSIZE == storage::kNumDTypes,
                "map the new dtype");
  switch (dtype) {
    case v1::DTYPE_UNSPECIFIED:
      return storage::DType::kUnspecified;
    case v1::FLOAT32:
      return storage::DType::kFloat32;
    case v1::FLOAT16:
      return storage::DType::kFloat16;
    case v1::BFLOAT16:
      return storage::DType::kBFloat16;
    case v1::FLOAT64:
      return storage::DType::kFloat64;
    case v1::INT8:
      return storage::DType::kInt8;
    case v1::UINT8:
      return storage::DType::kUInt8;
    case v1::INT16:
      return storage::DType::kInt16;
    case v1::INT32:
      return storage::DType::kInt32;
    case v1::INT64:
      return storage::DType::kInt64;
    case v1::BOOL:
      return storage::DType::kBool;
    case v1::FLOAT8_E4M3:
      return storage::DType::kFloat8E4M3;
    case v1::FLOAT8_E5M2:
      return storage::DType::kFloat8E5M2;
    default:
      return std::nullopt;
  }
}

v1::Algorithm ToProto(policy::Algorithm algorithm) {
  switch (algorithm) {
    case policy::Algorithm::kLru:
      return v1::LRU;
    case policy::Algorithm::kClock:
      return v1::CLOCK;
    case policy::Algorithm::kAdaptive:
      return v1::ADAPTIVE;
  }
  return v1::ALGORITHM_UNSPECIFIED;
}

std::optional<policy::Algorithm> FromProto(v1::Algorithm algorithm) {
  static_assert(v1::Algorithm_ARRAYSIZE == 4, "map the new algorithm");
  switch (algorithm) {
    case v1::LRU:
      return policy::Algorithm::kLru;
    case v1::CLOCK:
      return policy::Algorithm::kClock;
    case v1::ADAPTIVE:
      return policy::Algorithm::kAdaptive;
    default:
      return std::nullopt;
  }
}

v1::PressureLevel ToProto(PressureLevel level) {
  switch (level) {
    case PressureLevel::kLow:
      return v1::LOW;
    case PressureLevel::kMedium:
      return v1::MEDIUM;
    case PressureLevel::kHigh:
      return v1::HIGH;
    case PressureLevel::kCritical:
      return v1::CRITICAL;
  }
  return v1::PRESSURE_LEVEL_UNSPECIFIED;
}

std::optional<PressureLevel> FromProto(v1::PressureLevel level) {
  static_assert(v1::PressureLevel_ARRAYSIZE == 5, "map the new level");
  switch (level) {
    case v1::LOW:
      return PressureLevel::kLow;
    case v1::MEDIUM:
      return PressureLevel::kMedium;
    case v1::HIGH:
      return PressureLevel::kHigh;
    case v1::CRITICAL:
      return PressureLevel::kCritical;
    default:
      return std::nullopt;
  }
}

}  // namespace tensorpager::server
