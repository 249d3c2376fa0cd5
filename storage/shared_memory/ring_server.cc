#include "storage/shared_memory/ring_server.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstring>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "storage/base/happens_before.h"
#include "storage/shared_memory/futex.h"

namespace tensorpager::shared_memory {

namespace {

// After the last request, stay awake this long before sleeping on the
// doorbell: back-to-back requests then skip the wake-up.
constexpr auto kSpin = std::chrono::microseconds(20);
constexpr int kThreads = 8;

}  // namespace

bool InDataArea(uint64_t offset, uint64_t length, uint64_t segment_bytes) {
  return offset >= kDataOffset && offset <= segment_bytes &&
         length <= segment_bytes - offset;
}

absl::StatusOr<RingRequest> DecodeRequest(const RingSlot& slot,
                                          uint64_t segment_bytes) {
  RingRequest request;
  request.op = slot.op;
  const uint32_t ns_bytes =
      std::min<uint32_t>(slot.namespace_bytes, kMaxNamespaceBytes);
  const uint32_t id_bytes = std::min<uint32_t>(slot.id_bytes, kMaxIdBytes);
  request.ns.assign(slot.namespace_, ns_bytes);
  request.id.assign(slot.id, id_bytes);
  request.offset = slot.offset;
  request.length = slot.length;
  request.data_offset = slot.data_offset;
  request.data_length = slot.data_length;
  request.durable = DecodeDurable(slot.durable);

  if (request.op != kWrite && request.op != kRead && !IsBatchOp(request.op)) {
    return absl::InvalidArgumentError(
        absl::StrCat("ring request op ", request.op, " is unknown"));
  }
  if (!InDataArea(request.data_offset, request.data_length, segment_bytes)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ring request range [", request.data_offset, ", +", request.data_length,
        ") lies outside the segment's data area"));
  }
  if (IsBatchOp(request.op) &&
      !InDataArea(request.offset, request.length, segment_bytes)) {
    return absl::InvalidArgumentError(
        absl::StrCat("ring reply area [", request.offset, ", +", request.length,
                     ") lies outside the segment's data area"));
  }
  return request;
}

void EncodeCompletion(const RingCompletion& completion, RingSlot& slot) {
  slot.code = static_cast<int32_t>(completion.status.code());
  const size_t message_bytes =
      std::min<size_t>(completion.status.message().size(), kMaxMessageBytes);
  if (message_bytes > 0) {
    std::memcpy(slot.message, completion.status.message().data(),
                message_bytes);
  }
  slot.message_bytes = static_cast<uint32_t>(message_bytes);
  slot.result_length = completion.length;
  slot.hit = completion.hit;
  slot.result_durable = completion.durable;
  const size_t info_bytes =
      std::min<size_t>(completion.info.size(), kInfoBytes);
  if (info_bytes > 0) {
    std::memcpy(slot.info, completion.info.data(), info_bytes);
  }
  slot.info_bytes = static_cast<uint32_t>(info_bytes);
}

absl::StatusOr<std::unique_ptr<RingServer>> RingServer::Start(
    std::shared_ptr<void> mapping, uint64_t size_bytes, Handler handler) {
  if (size_bytes < kDataOffset + 4096) {
    return absl::InvalidArgumentError(
        absl::StrCat("a segment with a request ring needs at least ",
                     kDataOffset + 4096, " bytes, not ", size_bytes));
  }
  const auto* header = reinterpret_cast<const RingHeader*>(
      static_cast<const std::byte*>(mapping.get()) + kRingOffset);
  if (header->magic != kMagic || header->slots != kSlots) {
    return absl::InvalidArgumentError(
        "the segment holds no request ring (wrong magic or slot count); "
        "see storage/shared_memory/ring_layout.h");
  }
  std::unique_ptr<RingServer> ring(
      new RingServer(std::move(mapping), size_bytes, std::move(handler)));
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

RingServer::RingServer(std::shared_ptr<void> mapping, uint64_t size_bytes,
                       Handler handler)
    : mapping_(std::move(mapping)),
      base_(static_cast<std::byte*>(mapping_.get())),
      size_(size_bytes),
      handler_(std::move(handler)) {}

RingHeader& RingServer::header() const {
  return *reinterpret_cast<RingHeader*>(base_ + kRingOffset);
}

void RingServer::Beat() {
  while (!stop_.load()) {
    Word(header().heartbeat).fetch_add(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(kHeartbeatMs));
  }
}

RingServer::~RingServer() {
  stop_ = true;
  Word(header().doorbell).fetch_add(1);
  FutexWake(&header().doorbell, INT_MAX);
  for (std::thread& t : threads_) t.join();
  if (heartbeat_.joinable()) heartbeat_.join();
}

void RingServer::Loop() {
  RingHeader& h = header();
  auto last_work = std::chrono::steady_clock::now();
  while (!stop_.load()) {
    if (ServeSubmitted()) {
      last_work = std::chrono::steady_clock::now();
      continue;
    }
    if (std::chrono::steady_clock::now() - last_work < kSpin) continue;
    // Announce the sleep before the last look, so a client either sees
    // server_waiting and wakes us, or its request is seen by that look.
    Word(h.server_waiting).fetch_add(1);
    const uint32_t seen = Word(h.doorbell).load();
    if (!ServeSubmitted() && !stop_.load()) {
      FutexWait(&h.doorbell, seen, std::chrono::milliseconds(kHeartbeatMs));
    }
    Word(h.server_waiting).fetch_sub(1);
  }
}

bool RingServer::ServeSubmitted() {
  auto* slots = reinterpret_cast<RingSlot*>(base_ + kSlotsOffset);
  bool served = false;
  for (uint32_t i = 0; i < kSlots; ++i) {
    uint32_t expected = kSubmitted;
    if (Word(slots[i].state).compare_exchange_strong(expected, kProcessing)) {
      Serve(i);
      served = true;
    }
  }
  return served;
}

void RingServer::Serve(uint32_t index) {
  RingSlot& slot = reinterpret_cast<RingSlot*>(base_ + kSlotsOffset)[index];
  // The client orders its requests, in another process; see
  // happens_before.h.
  HappensAfter(base_);
  // DecodeRequest reads every field once: the client may scribble on the
  // slot meanwhile.
  absl::StatusOr<RingRequest> request = DecodeRequest(slot, size_);
  RingCompletion completion;
  if (request.ok()) {
    completion = handler_(*request,
                          absl::Span<std::byte>(base_ + request->data_offset,
                                                request->data_length),
                          absl::Span<std::byte>(base_, size_));
  } else {
    completion.status = request.status();
  }
  EncodeCompletion(completion, slot);
  HappensBefore(base_);
  Word(slot.state).store(kDone, std::memory_order_release);
  FutexWake(&slot.state, INT_MAX);
}

}  // namespace tensorpager::shared_memory
