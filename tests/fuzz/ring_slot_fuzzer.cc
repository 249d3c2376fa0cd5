// Fuzzes the decoding of a request-ring slot
// (storage/shared_memory/ring_slot_decoder.h): the slot is memory an untrusted
// client writes (storage/shared_memory/ring_layout.h).
//
// Input: a little-endian uint32 choosing the segment's size (0 to 64 pages
// past the ring; with the top bit set, a size short of the ring's end),
// then the slot's bytes (zero-filled when short).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "absl/types/span.h"
#include "storage/shared_memory/ring_layout.h"
#include "storage/shared_memory/ring_slot_decoder.h"
#include "tests/fuzz/fuzz_util.h"

namespace ring = tensorpager::v1::ring;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  uint32_t pages = 0;
  if (size >= sizeof(pages)) {
    std::memcpy(&pages, data, sizeof(pages));
    data += sizeof(pages);
    size -= sizeof(pages);
  }
  // Up to 64 pages of data area; a segment may also end inside the ring
  // (the ring's Start refuses those, the decoder must not care).
  const uint64_t segment_bytes = pages & 0x80000000u
                                     ? pages % (ring::kDataOffset + 1)
                                     : ring::kDataOffset + (pages % 65) * 4096;
  // Only the slot and the data area are touched: no need for a real ring.
  // Exactly the segment's size, so ASan sees a byte past its end.
  std::unique_ptr<std::byte[]> segment(new std::byte[segment_bytes]);
  auto slot = std::make_unique<ring::Slot>();
  std::memset(slot.get(), 0, sizeof(ring::Slot));
  std::memcpy(slot.get(), data, std::min(size, sizeof(ring::Slot)));

  const absl::Span<std::byte> whole(segment.get(), segment_bytes);
  absl::StatusOr<tensorpager::server::SharedMemoryRing::Request> request =
      tensorpager::server::DecodeSlot(*slot, whole);
  if (!request.ok()) {
    TP_FUZZ_CHECK(absl::IsInvalidArgument(request.status()));
    return 0;
  }
  TP_FUZZ_CHECK(request->op == ring::kWrite || request->op == ring::kRead);
  TP_FUZZ_CHECK(request->ns.size() <= ring::kMaxNamespaceBytes);
  TP_FUZZ_CHECK(request->id.size() <= ring::kMaxIdBytes);
  TP_FUZZ_CHECK(request->ns.size() ==
                std::min(slot->namespace_bytes, ring::kMaxNamespaceBytes));
  TP_FUZZ_CHECK(request->id.size() ==
                std::min(slot->id_bytes, ring::kMaxIdBytes));
  TP_FUZZ_CHECK(request->durable.has_value() == (slot->durable != 0));
  const std::byte* begin = request->data.data();
  TP_FUZZ_CHECK(begin >= segment.get() + ring::kDataOffset);
  TP_FUZZ_CHECK(request->data.size() <= segment_bytes);
  TP_FUZZ_CHECK(begin + request->data.size() <= segment.get() + segment_bytes);
  TP_FUZZ_CHECK(request->data.size() == slot->data_length);
  // Touch every byte the handler would: ASan checks the bounds.
  if (!request->data.empty()) {
    request->data.front() = std::byte{1};
    request->data.back() = std::byte{2};
  }
  return 0;
}
