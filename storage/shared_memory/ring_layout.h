// The wire layout of the shared-memory data path, defined once for both
// halves: the SDK (ring_client.h) and tensorpagerd (ring_server.h), built
// from the same tree. It is a same-host contract beside tensorpager.proto,
// for clients that attach a segment with AttachSharedMemoryRequest.ring set.
//
// Three words, one thing each:
//  - segment: a sealed memfd a client created and the server attached
//    (AttachSharedMemory); both map all of it. It holds, in order, the
//    token page (the token that identifies it to the server), the ring at
//    kRingOffset and the data area from kDataOffset to its end.
//  - ring: the request queue inside a segment: a RingHeader and kSlots
//    RingSlots. A served ring moves block bytes with no RPC at all.
//  - arena: the SDK's allocator over its segment's data area
//    (client_sdk/src/shared_arena.h): one range per transfer in flight,
//    named by a RingSlot's data_offset/data_length or by a SharedRange.
//
// A transfer takes a Free slot (compare-and-swap Free -> Filling), fills
// the request, publishes it (Submitted, release), bumps the doorbell and,
// if the server is waiting, wakes it with FUTEX_WAKE on the doorbell. The
// server claims the slot (Submitted -> Processing), carries the request
// out, fills the result and publishes Done, then wakes FUTEX waiters on the
// slot's state. A client that sees no progress may cancel a slot the server
// has not claimed (Submitted -> Free): one compare-and-swap or the other
// wins, so a request runs at most once. The server bumps `heartbeat` every
// kHeartbeatMs while it serves the ring, however busy it is: a heartbeat
// that stands still means the server is gone.
//
// Every field is plain data read and written through std::atomic_ref where
// both sides touch it concurrently (futex.h); the server treats all of it
// as untrusted input. No syscalls here: the layout only.
#ifndef TENSORPAGER_STORAGE_SHARED_MEMORY_RING_LAYOUT_H_
#define TENSORPAGER_STORAGE_SHARED_MEMORY_RING_LAYOUT_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>

#include "absl/status/status.h"
#include "storage/base/block_key.h"

namespace tensorpager::shared_memory {

inline constexpr uint64_t kMagic = 0x31474e4952505421ull;  // "!TPRING1"
inline constexpr uint32_t kSlots = 16;
// A slot's name fields hold every name the id rules allow, and no more.
inline constexpr uint32_t kMaxNamespaceBytes = storage::kMaxNamespaceBytes;
inline constexpr uint32_t kMaxIdBytes = storage::kMaxIdBytes;
inline constexpr uint32_t kMaxMessageBytes = 512;
// A serialized BlockInfo: 64 labels of 256 + 256 bytes and a 16-D shape
// fit with room to spare.
inline constexpr uint32_t kInfoBytes = 40 * 1024;
inline constexpr uint32_t kHeartbeatMs = 50;

enum SlotState : uint32_t {
  kFree = 0,
  kFilling = 1,
  kSubmitted = 2,
  kProcessing = 3,
  kDone = 4,
};

// RingSlot.durable: WriteBlockRequest.durable, which is optional.
enum RingDurable : uint32_t {
  kDurableDefault = 0,  // unset: the server's default for the region type
  kDurableNo = 1,
  kDurableYes = 2,
};

inline uint32_t EncodeDurable(std::optional<bool> durable) {
  if (!durable) return kDurableDefault;
  return *durable ? kDurableYes : kDurableNo;
}

// Any value but kDurableDefault and kDurableYes reads as false.
inline std::optional<bool> DecodeDurable(uint32_t durable) {
  if (durable == kDurableDefault) return std::nullopt;
  return durable == kDurableYes;
}

enum RingOp : uint32_t {
  kWrite = 1,  // segment [data_offset, +data_length) -> block at `offset`
  kRead = 2,   // block [offset, +length) (0: to the end) -> segment range
  // Batches: [data_offset, +data_length) holds the serialized request
  // (tensorpager.v1.LookupRequest, PutBlocksRequest or GetBlocksRequest,
  // whose SharedRanges name places in this segment; their segment ids and
  // capabilities are ignored), and the serialized response goes to the
  // reply area [offset, +length); result_length says how long it is. The
  // namespace and id fields are unused.
  kLookup = 3,
  kPutBlocks = 4,
  kGetBlocks = 5,
};

inline bool IsBatchOp(uint32_t op) {
  return op == kLookup || op == kPutBlocks || op == kGetBlocks;
}

struct RingSlot {
  uint32_t state;
  // The request: the client writes it, the server reads it.
  uint32_t op;
  uint32_t namespace_bytes;
  uint32_t id_bytes;
  char namespace_[kMaxNamespaceBytes];
  char id[kMaxIdBytes];
  uint64_t offset;
  uint64_t length;
  uint64_t data_offset;
  uint64_t data_length;
  uint32_t durable;  // a RingDurable
  // The completion: an absl::StatusCode and message, then the call's
  // outputs.
  int32_t code;
  uint32_t message_bytes;
  char message[kMaxMessageBytes];
  uint32_t padding;        // unused: keeps result_length 8-aligned
  uint64_t result_length;  // read: bytes copied; write: bytes written
  uint32_t hit;
  uint32_t result_durable;
  uint32_t info_bytes;
  uint32_t reserved;
  char info[kInfoBytes];  // serialized tensorpager.v1.BlockInfo
};

struct RingHeader {
  uint64_t magic;
  uint32_t slots;
  uint32_t doorbell;        // bumped on every submission (futex word)
  uint32_t server_waiting;  // server threads asleep on the doorbell
  uint32_t heartbeat;
  uint64_t reserved[4];
};

inline constexpr uint64_t kRingOffset = 4096;
inline constexpr uint64_t kSlotsOffset = kRingOffset + 4096;
// Where block bytes may start: the ring rounded up to a page.
inline constexpr uint64_t kDataOffset =
    (kSlotsOffset + kSlots * sizeof(RingSlot) + 4095) / 4096 * 4096;

// Writes the ring's header into a fresh segment (the client's part before
// it asks the server to attach); the slots start zeroed, that is free.
inline RingHeader& FormatRing(void* segment) {
  auto* header = reinterpret_cast<RingHeader*>(
      static_cast<std::byte*>(segment) + kRingOffset);
  header->magic = kMagic;
  header->slots = kSlots;
  return *header;
}

// A slot's request as a value: what the client posts and what the server
// decodes (every length already within its field's bound).
struct RingRequest {
  uint32_t op = 0;  // a RingOp
  std::string ns;
  std::string id;
  uint64_t offset = 0;
  uint64_t length = 0;
  std::optional<bool> durable;
  // The segment's bytes: a write's source, a read's destination capacity,
  // a batch's request (its reply area is [offset, +length)).
  uint64_t data_offset = 0;
  uint64_t data_length = 0;
};

// A slot's completion as a value: what the server answers and what the
// client reads back.
struct RingCompletion {
  absl::Status status;
  uint64_t length = 0;
  bool hit = false;
  bool durable = false;
  std::string info;  // serialized tensorpager.v1.BlockInfo
};

// The bytes are the contract: both halves (and tests/fuzz/make_corpus.py)
// depend on these numbers.
static_assert(std::is_trivially_copyable_v<RingSlot>);
static_assert(std::is_trivially_copyable_v<RingHeader>);
static_assert(std::is_standard_layout_v<RingSlot>);
static_assert(std::is_standard_layout_v<RingHeader>);
static_assert(alignof(RingSlot) == 8 && alignof(RingHeader) == 8);
static_assert(sizeof(RingHeader) == 56 && sizeof(RingHeader) <= 4096);
static_assert(offsetof(RingHeader, doorbell) == 12);
static_assert(offsetof(RingHeader, server_waiting) == 16);
static_assert(offsetof(RingHeader, heartbeat) == 20);
static_assert(sizeof(RingSlot) == 41880 && sizeof(RingSlot) % 8 == 0);
static_assert(offsetof(RingSlot, op) == 4);
static_assert(offsetof(RingSlot, namespace_) == 16);
static_assert(offsetof(RingSlot, id) == 80);
static_assert(offsetof(RingSlot, offset) == 336);
static_assert(offsetof(RingSlot, data_offset) == 352);
static_assert(offsetof(RingSlot, durable) == 368);
static_assert(offsetof(RingSlot, code) == 372);
static_assert(offsetof(RingSlot, message) == 380);
static_assert(offsetof(RingSlot, result_length) == 896);
static_assert(offsetof(RingSlot, info_bytes) == 912);
static_assert(offsetof(RingSlot, info) == 920);
static_assert(kSlotsOffset % alignof(RingSlot) == 0);
static_assert(kDataOffset == 679936);

}  // namespace tensorpager::shared_memory

#endif  // TENSORPAGER_STORAGE_SHARED_MEMORY_RING_LAYOUT_H_
