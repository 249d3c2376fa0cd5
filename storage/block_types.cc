#include "storage/block_types.h"

namespace tensorpager::storage {

const char* RegionTypeName(RegionType type) {
  switch (type) {
    case RegionType::kTensorData:
      return "TENSOR_DATA";
    case RegionType::kKvCache:
      return "KV_CACHE";
    case RegionType::kActivation:
      return "ACTIVATION";
    case RegionType::kWeight:
      return "WEIGHT";
    case RegionType::kImageFeatures:
      return "IMAGE_FEATURES";
    case RegionType::kTemporary:
      return "TEMPORARY";
  }
  return "TENSOR_DATA";
}

const char* TierName(Tier tier) {
  switch (tier) {
    case Tier::kEmpty:
      return "EMPTY";
    case Tier::kRam:
      return "RAM";
    case Tier::kDisk:
      return "DISK";
    case Tier::kRamAndDisk:
      return "RAM_AND_DISK";
    case Tier::kLost:
      return "LOST";
  }
  return "EMPTY";
}

}  // namespace tensorpager::storage
