#include "storage/checksum.h"

#include <xxhash.h>

namespace tensorpager::storage {

uint64_t Checksum(absl::Span<const std::byte> data) {
  return XXH3_64bits(data.data(), data.size());
}

}  // namespace tensorpager::storage
