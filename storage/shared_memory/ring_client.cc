#include "storage/shared_memory/ring_client.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "storage/shared_memory/futex.h"

namespace tensorpager::shared_memory {
namespace {

// Ring waits: busy polls before sleeping, the sleep slice between looks at
// the server's heartbeat, and how long a silent heartbeat means the server
// is gone (it beats every kHeartbeatMs while serving).
constexpr int kSpins = 2000;
constexpr auto kWaitSlice = std::chrono::milliseconds(10);
constexpr absl::Duration kServerSilence = absl::Milliseconds(500);

}  // namespace

void EncodeRequest(const RingRequest& request, RingSlot& slot) {
  slot.op = request.op;
  slot.namespace_bytes = static_cast<uint32_t>(request.ns.size());
  if (!request.ns.empty()) {
    std::memcpy(slot.namespace_, request.ns.data(), request.ns.size());
  }
  slot.id_bytes = static_cast<uint32_t>(request.id.size());
  if (!request.id.empty()) {
    std::memcpy(slot.id, request.id.data(), request.id.size());
  }
  slot.offset = request.offset;
  slot.length = request.length;
  slot.data_offset = request.data_offset;
  slot.data_length = request.data_length;
  slot.durable = EncodeDurable(request.durable);
}

RingCompletion DecodeCompletion(const RingSlot& slot) {
  RingCompletion completion;
  completion.status = absl::Status(
      static_cast<absl::StatusCode>(slot.code),
      absl::string_view(slot.message, std::min<uint32_t>(slot.message_bytes,
                                                         kMaxMessageBytes)));
  completion.length = slot.result_length;
  completion.hit = slot.hit != 0;
  completion.durable = slot.result_durable != 0;
  completion.info.assign(slot.info,
                         std::min<uint32_t>(slot.info_bytes, kInfoBytes));
  return completion;
}

RingClient::RingClient(std::byte* segment) : base_(segment) {
  FormatRing(base_);
}

RingHeader& RingClient::header() const {
  return *reinterpret_cast<RingHeader*>(base_ + kRingOffset);
}

RingSlot* RingClient::slots() const {
  return reinterpret_cast<RingSlot*>(base_ + kSlotsOffset);
}

void RingClient::Reset(bool served) {
  {
    std::lock_guard<std::mutex> lock(slots_mu_);
    for (uint32_t i = 0; i < kSlots; ++i) {
      if (!slot_owned_[i]) Word(slots()[i].state).store(kFree);
    }
  }
  stalled_ = false;
  served_ = served;
}

std::optional<RingCompletion> RingClient::Call(const RingRequest& request,
                                               absl::Duration timeout) {
  std::optional<uint32_t> slot = Post(request);
  if (!slot) return std::nullopt;
  return Await(*slot, timeout);
}

std::optional<uint32_t> RingClient::Post(const RingRequest& request) {
  if (!served_.load(std::memory_order_acquire)) return std::nullopt;
  RingHeader& h = header();
  if (stalled_.load()) {
    // A request went unclaimed while the heartbeat stood still: use the
    // RPCs until the server shows signs of life (or is attached again).
    if (Word(h.heartbeat).load() == stalled_beat_.load()) {
      return std::nullopt;
    }
    stalled_ = false;
  }
  if (request.ns.size() > kMaxNamespaceBytes ||
      request.id.size() > kMaxIdBytes) {
    return std::nullopt;  // the RPC path reports the bad name
  }
  uint32_t index = kSlots;
  {
    std::lock_guard<std::mutex> lock(slots_mu_);
    for (uint32_t i = 0; i < kSlots; ++i) {
      uint32_t expected = kFree;
      if (!slot_owned_[i] &&
          Word(slots()[i].state).compare_exchange_strong(expected, kFilling)) {
        slot_owned_[i] = true;
        index = i;
        break;
      }
    }
  }
  if (index == kSlots) return std::nullopt;
  RingSlot& slot = slots()[index];
  EncodeRequest(request, slot);
  Word(slot.state).store(kSubmitted, std::memory_order_release);
  Word(h.doorbell).fetch_add(1);
  if (Word(h.server_waiting).load() != 0) FutexWake(&h.doorbell, 1);
  return index;
}

void RingClient::Release(uint32_t index, bool free_slot) {
  if (free_slot) Word(slots()[index].state).store(kFree);
  std::lock_guard<std::mutex> lock(slots_mu_);
  slot_owned_[index] = false;
}

std::optional<RingCompletion> RingClient::Await(uint32_t index,
                                                absl::Duration timeout) {
  RingHeader& h = header();
  RingSlot& slot = slots()[index];
  // Spin briefly (the answer often comes within a futex round trip), then
  // sleep on the slot, watching the server's heartbeat.
  const absl::Time start = absl::Now();
  uint32_t beat = Word(h.heartbeat).load();
  absl::Time beat_seen = start;
  for (int spins = 0;; ++spins) {
    const uint32_t state = Word(slot.state).load(std::memory_order_acquire);
    if (state == kDone) break;
    if (spins < kSpins) continue;
    FutexWait(&slot.state, state, kWaitSlice);
    const absl::Time now = absl::Now();
    if (const uint32_t b = Word(h.heartbeat).load(); b != beat) {
      beat = b;
      beat_seen = now;
    }
    if (now - beat_seen > kServerSilence) {
      // The server is gone. Unclaimed: take the request back for the RPCs
      // (which attach again). Claimed: it died mid-request, as a call
      // would fail when its server dies.
      stalled_beat_ = beat;
      stalled_ = true;
      uint32_t expected = kSubmitted;
      if (Word(slot.state).compare_exchange_strong(expected, kFree)) {
        Release(index, /*free_slot=*/false);
        return std::nullopt;
      }
      if (expected == kProcessing) {
        Release(index, /*free_slot=*/false);
        RingCompletion lost;
        lost.status = absl::UnavailableError(
            "tensorpagerd stopped while serving a shared-memory request; "
            "retry once it is back");
        return lost;
      }
    }
    if (now - start > timeout) {
      // Left to the server: the slot frees itself at the next attach.
      Release(index, /*free_slot=*/false);
      RingCompletion late;
      late.status = absl::DeadlineExceededError(absl::StrCat(
          "tensorpagerd did not answer a shared-memory request within ",
          absl::FormatDuration(timeout)));
      return late;
    }
  }
  RingCompletion completion = DecodeCompletion(slot);
  Release(index, /*free_slot=*/true);
  return completion;
}

}  // namespace tensorpager::shared_memory
