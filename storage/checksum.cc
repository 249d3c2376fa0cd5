#include "storage/checksum.h"

// The dispatching entry point picks the widest vector unit the CPU has
// (AVX2, AVX-512) at run time, for the same XXH3-64 value: the plain
// XXH3_64bits of Debian's build stays on SSE2, and hashing every block
// written took a third of the server's time on a put of 64 KiB pages.
#include <xxh_x86dispatch.h>

namespace tensorpager::storage {

uint64_t Checksum(absl::Span<const std::byte> data) {
  return XXH3_64bits_dispatch(data.data(), data.size());
}

}  // namespace tensorpager::storage
