// Block checksums: XXH3-64 over the block's logical bytes, stored in the
// metadata record and verified on every swap-in.
#ifndef TENSORPAGER_STORAGE_CHECKSUM_H_
#define TENSORPAGER_STORAGE_CHECKSUM_H_

#include <cstddef>
#include <cstdint>

#include "absl/types/span.h"

namespace tensorpager::storage {

uint64_t Checksum(absl::Span<const std::byte> data);

}  // namespace tensorpager::storage

#endif  // TENSORPAGER_STORAGE_CHECKSUM_H_
