// Storage-side vocabulary of a block. Enum values equal the public proto's
// so the service converts with a cast; storage itself knows nothing of gRPC.
#ifndef TENSORPAGER_STORAGE_BLOCK_TYPES_H_
#define TENSORPAGER_STORAGE_BLOCK_TYPES_H_

#include <cstdint>
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
  uint32_t dtype = 0;  // tensorpager.v1.DType value
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
