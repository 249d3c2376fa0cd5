// The request ring of the shared-memory data path: part of the public
// contract beside tensorpager.proto, for clients that attach an arena with
// AttachSharedMemoryRequest.ring set. It lives at kRingOffset of the arena
// (after the token page); block bytes go in the rest of the arena.
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
// both sides touch it concurrently; the server treats all of it as
// untrusted input.
#ifndef TENSORPAGER_STORAGE_SHARED_MEMORY_RING_LAYOUT_H_
#define TENSORPAGER_STORAGE_SHARED_MEMORY_RING_LAYOUT_H_

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <type_traits>

namespace tensorpager::v1::ring {

inline constexpr uint64_t kMagic = 0x31474e4952505421ull;  // "!TPRING1"
inline constexpr uint32_t kSlots = 16;
inline constexpr uint32_t kMaxNamespaceBytes = 64;
inline constexpr uint32_t kMaxIdBytes = 256;
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

enum Op : uint32_t {
  kWrite = 1,  // arena [data_offset, +data_length) -> block at `offset`
  kRead = 2,   // block [offset, +length) (0: to the end) -> arena range
};

struct Slot {
  uint32_t state;
  uint32_t op;
  uint32_t namespace_bytes;
  uint32_t id_bytes;
  char namespace_[kMaxNamespaceBytes];
  char id[kMaxIdBytes];
  uint64_t offset;
  uint64_t length;
  uint64_t data_offset;
  uint64_t data_length;
  uint32_t durable;  // 0: the server's default, 1: false, 2: true
  // Result: an absl::StatusCode and message, then the call's outputs.
  int32_t code;
  uint32_t message_bytes;
  char message[kMaxMessageBytes];
  uint64_t result_length;  // read: bytes copied; write: bytes written
  uint32_t hit;
  uint32_t result_durable;
  uint32_t info_bytes;
  uint32_t reserved;
  char info[kInfoBytes];  // serialized tensorpager.v1.BlockInfo
};

struct Header {
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
    (kSlotsOffset + kSlots * sizeof(Slot) + 4095) / 4096 * 4096;

// The protocol's primitives on a shared word: atomic access, and shared
// (not FUTEX_PRIVATE) futex waits and wakes, since the word lives in
// another process's mapping of the memfd.
inline std::atomic_ref<uint32_t> Word(uint32_t& word) {
  return std::atomic_ref<uint32_t>(word);
}

// Returns when woken, when *word != expected, or after `timeout`.
inline void FutexWait(uint32_t* word, uint32_t expected,
                      std::chrono::microseconds timeout) {
  timespec ts{static_cast<time_t>(timeout.count() / 1000000),
              static_cast<long>(timeout.count() % 1000000) * 1000};
  ::syscall(SYS_futex, word, FUTEX_WAIT, expected, &ts, nullptr, 0);
}

inline void FutexWake(uint32_t* word, int waiters) {
  ::syscall(SYS_futex, word, FUTEX_WAKE, waiters, nullptr, nullptr, 0);
}

static_assert(std::is_trivially_copyable_v<Slot>);
static_assert(std::is_trivially_copyable_v<Header>);
static_assert(sizeof(Header) <= 4096);
static_assert(sizeof(Slot) % 8 == 0);

}  // namespace tensorpager::v1::ring

#endif  // TENSORPAGER_STORAGE_SHARED_MEMORY_RING_LAYOUT_H_
