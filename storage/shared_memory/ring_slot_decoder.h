// Decodes one slot of a shared-memory request ring
// (storage/shared_memory/ring_layout.h) into a SharedMemoryRing::Request.
// The slot lives in memory the client writes, so everything in it is
// untrusted: a pure function, apart from the ring's threads, so that it can
// be tested and fuzzed on its own (tests/fuzz/ring_slot_fuzzer.cc).
#ifndef TENSORPAGER_STORAGE_SHARED_MEMORY_RING_SLOT_DECODER_H_
#define TENSORPAGER_STORAGE_SHARED_MEMORY_RING_SLOT_DECODER_H_

#include <cstddef>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "storage/shared_memory/ring_layout.h"
#include "storage/shared_memory/ring_server.h"

namespace tensorpager::server {

// Reads every field of `slot` once (the client may scribble on it
// meanwhile), clamps the namespace and id lengths to their fields and checks
// the op and the data range against `segment`, the whole mapped segment.
// The returned request's data points into `segment`, at or after
// ring::kDataOffset. INVALID_ARGUMENT for an unknown op or a range outside
// the segment's data area.
absl::StatusOr<SharedMemoryRing::Request> DecodeSlot(
    const v1::ring::Slot& slot, absl::Span<std::byte> segment);

}  // namespace tensorpager::server

#endif  // TENSORPAGER_STORAGE_SHARED_MEMORY_RING_SLOT_DECODER_H_
