// Storage-side vocabulary of a block; storage itself knows nothing of gRPC.
// Enum values equal the public proto's (tensorpager.v1), and the block
// records store them: server/proto_convert.cc converts each value
// explicitly and pins the numbering with static_asserts, and
// tests/unit/proto_enums_test.cc round-trips every proto value.
#ifndef TENSORPAGER_STORAGE_BLOCK_TYPES_H_
#define TENSORPAGER_STORAGE_BLOCK_TYPES_H_

#include <cstdint>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "storage/codec.h"

namespace tensorpager::storage {

enum class RegionType : uint8_t {
  kTensorData = 1,
  kKvCache = 2,
  kActivation = 3,
  kWeight = 4,
  kImageFeatures = 5,
  kTemporary = 6,
};
inline constexpr int kNumRegionTypes = 7;  // index 0 unused

enum class Tier : uint8_t {
  kEmpty = 1,
  kRam = 2,
  kDisk = 3,
  kRamAndDisk = 4,
  kLost = 5,
};

// Element types of a tensor block.
enum class DType : uint32_t {
  kUnspecified = 0,
  kFloat32 = 1,
  kFloat16 = 2,
  kBFloat16 = 3,
  kFloat64 = 4,
  kInt8 = 5,
  kUInt8 = 6,
  kInt16 = 7,
  kInt32 = 8,
  kInt64 = 9,
  kBool = 10,
  kFloat8E4M3 = 11,
  kFloat8E5M2 = 12,
};

// Bytes per element of every DType, in value order.
struct DTypeSize {
  DType dtype;
  uint32_t element_bytes;
};
inline constexpr DTypeSize kDTypeSizes[] = {
    {DType::kUnspecified, 0}, {DType::kFloat32, 4}, {DType::kFloat16, 2},
    {DType::kBFloat16, 2},    {DType::kFloat64, 8}, {DType::kInt8, 1},
    {DType::kUInt8, 1},       {DType::kInt16, 2},   {DType::kInt32, 4},
    {DType::kInt64, 8},       {DType::kBool, 1},    {DType::kFloat8E4M3, 1},
    {DType::kFloat8E5M2, 1},
};
inline constexpr int kNumDTypes = static_cast<int>(std::size(kDTypeSizes));
static_assert([] {
  for (int i = 0; i < kNumDTypes; ++i) {
    if (static_cast<int>(kDTypeSizes[i].dtype) != i) return false;
  }
  return true;
}());

// 0 for kUnspecified and for values this server does not know (a damaged
// record): the shape is then not checked against the size, and the bytes
// are compressed without a shuffle.
inline uint32_t ElementBytes(DType dtype) {
  const auto i = static_cast<uint32_t>(dtype);
  return i < kNumDTypes ? kDTypeSizes[i].element_bytes : 0;
}

const char* RegionTypeName(RegionType type);
const char* TierName(Tier tier);

struct SequenceRef {
  std::string group;
  uint32_t index = 0;
};

// What a client declares when registering a block.
struct BlockAttributes {
  uint64_t size_bytes = 0;
  RegionType region_type = RegionType::kTensorData;
  bool pinned = false;
  DType dtype = DType::kUnspecified;
  std::vector<int64_t> shape;
  std::map<std::string, std::string> labels;
  std::optional<SequenceRef> sequence;
  // Codec of its disk copies; unset: the region type's or the server's
  // default.
  std::optional<Codec> codec;
};

// A block as reported to clients.
struct BlockInfo {
  std::string ns;
  std::string id;
  BlockAttributes attrs;
  Tier tier = Tier::kEmpty;
  uint64_t stored_bytes = 0;
  uint64_t checksum = 0;
  uint64_t version = 0;
  uint64_t access_count = 0;
  int64_t last_access_unix_ms = 0;
  int64_t created_unix_ms = 0;
  std::string lost_reason;
  std::string codec;
};

}  // namespace tensorpager::storage

#endif  // TENSORPAGER_STORAGE_BLOCK_TYPES_H_
