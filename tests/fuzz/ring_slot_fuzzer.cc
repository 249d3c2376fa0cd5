// Fuzzes the decoding of a ring slot's request (DecodeRequest in
// storage/shared_memory/ring_server.h): the slot is memory an untrusted
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
#include "storage/shared_memory/ring_server.h"
#include "tests/fuzz/fuzz_util.h"

namespace shm = tensorpager::shared_memory;

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
                                     ? pages % (shm::kDataOffset + 1)
                                     : shm::kDataOffset + (pages % 65) * 4096;
  // Only the slot and the data area are touched: no need for a real ring.
  // Exactly the segment's size, so ASan sees a byte past its end.
  std::unique_ptr<std::byte[]> segment(new std::byte[segment_bytes]);
  auto slot = std::make_unique<shm::RingSlot>();
  std::memset(slot.get(), 0, sizeof(shm::RingSlot));
  std::memcpy(slot.get(), data, std::min(size, sizeof(shm::RingSlot)));

  absl::StatusOr<shm::RingRequest> request =
      shm::DecodeRequest(*slot, segment_bytes);
  if (!request.ok()) {
    TP_FUZZ_CHECK(absl::IsInvalidArgument(request.status()));
    return 0;
  }
  TP_FUZZ_CHECK(request->op == shm::kWrite || request->op == shm::kRead ||
                shm::IsBatchOp(request->op));
  TP_FUZZ_CHECK(request->ns.size() <= shm::kMaxNamespaceBytes);
  TP_FUZZ_CHECK(request->id.size() <= shm::kMaxIdBytes);
  TP_FUZZ_CHECK(request->ns.size() ==
                std::min(slot->namespace_bytes, shm::kMaxNamespaceBytes));
  TP_FUZZ_CHECK(request->id.size() ==
                std::min(slot->id_bytes, shm::kMaxIdBytes));
  TP_FUZZ_CHECK(request->durable.has_value() == (slot->durable != 0));
  TP_FUZZ_CHECK(request->data_offset >= shm::kDataOffset);
  TP_FUZZ_CHECK(request->data_length <= segment_bytes);
  TP_FUZZ_CHECK(request->data_offset <= segment_bytes - request->data_length);
  TP_FUZZ_CHECK(request->data_length == slot->data_length);
  // Touch every byte the handler would (RingServer hands it this range):
  // ASan checks the bounds.
  const absl::Span<std::byte> range(segment.get() + request->data_offset,
                                    request->data_length);
  if (!range.empty()) {
    range.front() = std::byte{1};
    range.back() = std::byte{2};
  }
  // A batch's reply area, likewise.
  if (shm::IsBatchOp(request->op) && request->length > 0) {
    TP_FUZZ_CHECK(request->offset >= shm::kDataOffset);
    segment[request->offset] = std::byte{3};
    segment[request->offset + request->length - 1] = std::byte{4};
  }
  return 0;
}
