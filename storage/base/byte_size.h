// Byte counts as flags and config values: "2GiB", "512MiB", "64k", "4096".
#ifndef TENSORPAGER_STORAGE_BASE_BYTE_SIZE_H_
#define TENSORPAGER_STORAGE_BASE_BYTE_SIZE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tensorpager::base {

// Accepts a number with an optional unit: B, K/KB/KiB, M/MB/MiB, G/GB/GiB,
// T/TB/TiB (all binary multiples, case-insensitive).
absl::StatusOr<uint64_t> ParseByteSize(absl::string_view text);
std::string FormatByteSize(uint64_t bytes);

// A flag type wrapping ParseByteSize.
struct ByteSize {
  uint64_t bytes = 0;
};
bool AbslParseFlag(absl::string_view text, ByteSize* out, std::string* error);
std::string AbslUnparseFlag(ByteSize size);

}  // namespace tensorpager::base

#endif  // TENSORPAGER_STORAGE_BASE_BYTE_SIZE_H_
