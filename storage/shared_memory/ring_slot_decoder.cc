#include "storage/shared_memory/ring_slot_decoder.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/str_cat.h"

namespace tensorpager::server {

namespace ring = v1::ring;

absl::StatusOr<SharedMemoryRing::Request> DecodeSlot(
    const ring::Slot& slot, absl::Span<std::byte> segment) {
  SharedMemoryRing::Request request;
  request.op = slot.op;
  const uint32_t ns_bytes =
      std::min<uint32_t>(slot.namespace_bytes, ring::kMaxNamespaceBytes);
  const uint32_t id_bytes =
      std::min<uint32_t>(slot.id_bytes, ring::kMaxIdBytes);
  request.ns.assign(slot.namespace_, ns_bytes);
  request.id.assign(slot.id, id_bytes);
  request.offset = slot.offset;
  request.length = slot.length;
  const uint64_t data_offset = slot.data_offset;
  const uint64_t data_length = slot.data_length;
  const uint32_t durable = slot.durable;
  if (durable != 0) request.durable = durable == 2;

  if (request.op != ring::kWrite && request.op != ring::kRead) {
    return absl::InvalidArgumentError(
        absl::StrCat("ring request op ", request.op, " is unknown"));
  }
  const uint64_t size = segment.size();
  if (data_offset < ring::kDataOffset || data_offset > size ||
      data_length > size - data_offset) {
    return absl::InvalidArgumentError(
        absl::StrCat("ring request range [", data_offset, ", +", data_length,
                     ") lies outside the segment's data area"));
  }
  request.data = segment.subspan(data_offset, data_length);
  return request;
}

}  // namespace tensorpager::server
