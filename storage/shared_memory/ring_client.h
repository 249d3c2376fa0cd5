// The client's half of the ring (ring_layout.h): formats the ring in the
// client's segment, claims a slot, posts a request and waits for its
// completion while watching the server's heartbeat. The SDK's arena
// (client_sdk/src/shared_arena.h) owns one per segment.
#ifndef TENSORPAGER_STORAGE_SHARED_MEMORY_RING_CLIENT_H_
#define TENSORPAGER_STORAGE_SHARED_MEMORY_RING_CLIENT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>

#include "absl/time/time.h"
#include "storage/shared_memory/ring_layout.h"

namespace tensorpager::shared_memory {

// Writes `request` into the slot's request fields; the caller checked that
// the namespace and id fit theirs.
void EncodeRequest(const RingRequest& request, RingSlot& slot);
// Reads the completion the server wrote into the slot (lengths clamped to
// their fields).
RingCompletion DecodeCompletion(const RingSlot& slot);

class RingClient {
 public:
  // Formats the ring of `segment`, mapped here and at least kDataOffset
  // bytes long; it must outlive this.
  explicit RingClient(std::byte* segment);
  RingClient(const RingClient&) = delete;
  RingClient& operator=(const RingClient&) = delete;

  // After each attach of the segment: whether the server serves the ring.
  // Slots a previous server left behind (it died mid-request, or a waiter
  // gave up on them) are free again for the new one.
  void Reset(bool served);
  bool served() const { return served_.load(std::memory_order_relaxed); }

  // A transfer with no RPC. nullopt: not taken (no ring, a name too long
  // for the slot, every slot busy, or the server stopped serving it — then
  // use the RPCs, which attach again).
  std::optional<RingCompletion> Call(const RingRequest& request,
                                     absl::Duration timeout);
  // Call in two halves, for requests that run side by side: Post claims a
  // slot and submits the request (nullopt: not taken, as for Call); Await
  // waits for that slot's completion, with Call's answers. Every posted
  // slot must be awaited.
  std::optional<uint32_t> Post(const RingRequest& request);
  std::optional<RingCompletion> Await(uint32_t slot, absl::Duration timeout);

 private:
  // Gives up this process's claim of a slot (`free_slot`: and frees it
  // for the next request).
  void Release(uint32_t index, bool free_slot);
  RingHeader& header() const;
  RingSlot* slots() const;

  std::byte* base_;
  std::atomic<bool> served_{false};
  std::atomic<bool> stalled_{false};
  std::atomic<uint32_t> stalled_beat_{0};
  std::mutex slots_mu_;
  bool slot_owned_[kSlots] = {};  // by a Call in this process
};

}  // namespace tensorpager::shared_memory

#endif  // TENSORPAGER_STORAGE_SHARED_MEMORY_RING_CLIENT_H_
