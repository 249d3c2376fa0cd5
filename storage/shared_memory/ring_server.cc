#include "storage/shared_memory/ring_server.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstring>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "storage/happens_before.h"
#include "storage/shared_memory/ring_layout.h"
#include "storage/shared_memory/ring_slot_decoder.h"

namespace tensorpager::server {
namespace {

namespace ring = v1::ring;

// After the last request, stay awake this long before sleeping on the
// doorbell: back-to-back requests then skip the wake-up.
constexpr auto kSpin = std::chrono::microseconds(20);
constexpr int kThreads = 2;

}  // namespace

absl::StatusOr<std::unique_ptr<SharedMemoryRing>> SharedMemoryRing::Start(
    std::shared_ptr<void> mapping, uint64_t size_bytes, Handler handler) {
  if (size_bytes < ring::kDataOffset + 4096) {
    return absl::InvalidArgumentError(
        absl::StrCat("a segment with a request ring needs at least ",
                     ring::kDataOffset + 4096, " bytes, not ", size_bytes));
  }
  const auto* header = reinterpret_cast<const ring::Header*>(
      static_cast<const std::byte*>(mapping.get()) + ring::kRingOffset);
  if (header->magic != ring::kMagic || header->slots != ring::kSlots) {
    return absl::InvalidArgumentError(
        "the segment holds no request ring (wrong magic or slot count); "
        "see storage/shared_memory/ring_layout.h");
  }
  std::unique_ptr<SharedMemoryRing> ring(
      new SharedMemoryRing(std::move(mapping), size_bytes, std::move(handler)));
  // The process may be out of threads: that is an answer for this client
  // (it uses the RPCs), never a reason to abort the server. The destructor
  // stops whatever threads did start.
  try {
    for (int i = 0; i < kThreads; ++i) {
      ring->threads_.emplace_back([r = ring.get()] { r->Loop(); });
    }
    ring->heartbeat_ = std::thread([r = ring.get()] { r->Beat(); });
  } catch (const std::system_error& e) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot start the request ring's threads (", e.what(),
                     "); the segment is served through the RPCs"));
  }
  return ring;
}

SharedMemoryRing::SharedMemoryRing(std::shared_ptr<void> mapping,
                                   uint64_t size_bytes, Handler handler)
    : mapping_(std::move(mapping)),
      base_(static_cast<std::byte*>(mapping_.get())),
      size_(size_bytes),
      handler_(std::move(handler)) {}

void SharedMemoryRing::Beat() {
  auto* header = reinterpret_cast<ring::Header*>(base_ + ring::kRingOffset);
  while (!stop_.load()) {
    ring::Word(header->heartbeat).fetch_add(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(ring::kHeartbeatMs));
  }
}

SharedMemoryRing::~SharedMemoryRing() {
  stop_ = true;
  auto* header = reinterpret_cast<ring::Header*>(base_ + ring::kRingOffset);
  ring::Word(header->doorbell).fetch_add(1);
  ring::FutexWake(&header->doorbell, INT_MAX);
  for (std::thread& t : threads_) t.join();
  if (heartbeat_.joinable()) heartbeat_.join();
}

void SharedMemoryRing::Loop() {
  auto* header = reinterpret_cast<ring::Header*>(base_ + ring::kRingOffset);
  auto last_work = std::chrono::steady_clock::now();
  while (!stop_.load()) {
    if (ServeSubmitted()) {
      last_work = std::chrono::steady_clock::now();
      continue;
    }
    if (std::chrono::steady_clock::now() - last_work < kSpin) continue;
    // Announce the sleep before the last look, so a client either sees
    // server_waiting and wakes us, or its request is seen by that look.
    ring::Word(header->server_waiting).fetch_add(1);
    const uint32_t seen = ring::Word(header->doorbell).load();
    if (!ServeSubmitted() && !stop_.load()) {
      ring::FutexWait(&header->doorbell, seen,
                      std::chrono::milliseconds(ring::kHeartbeatMs));
    }
    ring::Word(header->server_waiting).fetch_sub(1);
  }
}

bool SharedMemoryRing::ServeSubmitted() {
  auto* slots = reinterpret_cast<ring::Slot*>(base_ + ring::kSlotsOffset);
  bool served = false;
  for (uint32_t i = 0; i < ring::kSlots; ++i) {
    uint32_t expected = ring::kSubmitted;
    if (ring::Word(slots[i].state)
            .compare_exchange_strong(expected, ring::kProcessing)) {
      Serve(i);
      served = true;
    }
  }
  return served;
}

void SharedMemoryRing::Serve(uint32_t index) {
  ring::Slot& slot =
      reinterpret_cast<ring::Slot*>(base_ + ring::kSlotsOffset)[index];
  // The client orders its requests, in another process; see
  // happens_before.h.
  HappensAfter(base_);
  // DecodeSlot reads every field once: the client may scribble on the slot
  // meanwhile.
  absl::StatusOr<Request> request =
      DecodeSlot(slot, absl::Span<std::byte>(base_, size_));
  Result result;
  if (request.ok()) {
    result = handler_(*request);
  } else {
    result.status = request.status();
  }

  slot.code = static_cast<int32_t>(result.status.code());
  const size_t message_bytes =
      std::min<size_t>(result.status.message().size(), ring::kMaxMessageBytes);
  if (message_bytes > 0) {
    std::memcpy(slot.message, result.status.message().data(), message_bytes);
  }
  slot.message_bytes = static_cast<uint32_t>(message_bytes);
  slot.result_length = result.length;
  slot.hit = result.hit;
  slot.result_durable = result.durable;
  const size_t info_bytes =
      std::min<size_t>(result.info.size(), ring::kInfoBytes);
  if (info_bytes > 0) std::memcpy(slot.info, result.info.data(), info_bytes);
  slot.info_bytes = static_cast<uint32_t>(info_bytes);
  HappensBefore(base_);
  ring::Word(slot.state).store(ring::kDone, std::memory_order_release);
  ring::FutexWake(&slot.state, INT_MAX);
}

}  // namespace tensorpager::server
