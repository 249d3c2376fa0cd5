#include "client_sdk/src/shared_arena.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>

#include "absl/strings/str_cat.h"
#include "client_sdk/src/rpc_util.h"
#include "storage/shared_memory/ring_layout.h"

namespace tensorpager::internal {
namespace {

namespace ring = v1::ring;

// Ranges start on whole pages so transfers stay aligned. The first page
// holds the token that identifies the segment to the server.
constexpr uint64_t kGranule = 4096;
constexpr size_t kTokenBytes = 16;

// Ring waits: busy polls before sleeping, the sleep slice between looks at
// the server's heartbeat, and how long a silent heartbeat means the server
// is gone (it beats every ring::kHeartbeatMs while serving).
constexpr int kSpins = 2000;
constexpr auto kWaitSlice = std::chrono::milliseconds(10);
constexpr absl::Duration kServerSilence = absl::Milliseconds(500);

uint64_t RoundUp(uint64_t n) {
  return (n + kGranule - 1) / kGranule * kGranule;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SharedArena>> SharedArena::Create(
    v1::TensorPager::Stub& stub, uint64_t size_bytes, absl::Duration timeout) {
  size_bytes =
      RoundUp(std::max<uint64_t>(size_bytes, ring::kDataOffset + kGranule));
  const int fd =
      ::memfd_create("tensorpager-sdk", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("memfd_create: ", std::strerror(errno)));
  }
  auto fail = [fd](absl::string_view what) {
    const std::string message = absl::StrCat(what, ": ", std::strerror(errno));
    ::close(fd);
    return absl::UnavailableError(message);
  };
  if (::ftruncate(fd, static_cast<off_t>(size_bytes)) != 0) {
    return fail("ftruncate of the shared-memory arena");
  }
  // Fixed size: the server's mapping can never run past the end of it.
  if (::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) !=
      0) {
    return fail("sealing the shared-memory arena");
  }
  void* p =
      ::mmap(nullptr, size_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return fail("mapping the shared-memory arena");
  std::unique_ptr<SharedArena> arena(
      new SharedArena(fd, static_cast<std::byte*>(p), size_bytes));
  std::random_device random;
  for (size_t i = 0; i < kTokenBytes; ++i) {
    arena->base_[i] = static_cast<std::byte>(random());
  }
  if (absl::Status s = arena->Attach(stub, timeout); !s.ok()) return s;
  return arena;
}

SharedArena::SharedArena(int fd, std::byte* base, uint64_t size)
    : fd_(fd), base_(base), size_(size) {
  // Block bytes go after the token page and the request ring.
  free_.emplace(ring::kDataOffset, size - ring::kDataOffset);
  auto* header = reinterpret_cast<ring::Header*>(base_ + ring::kRingOffset);
  header->magic = ring::kMagic;
  header->slots = ring::kSlots;
}

absl::Status SharedArena::Attach(v1::TensorPager::Stub& stub,
                                 absl::Duration timeout) {
  v1::AttachSharedMemoryRequest req;
  req.set_pid(static_cast<int32_t>(::getpid()));
  req.set_fd(fd_);
  req.set_size_bytes(size_);
  req.set_token(reinterpret_cast<const char*>(base_), kTokenBytes);
  req.set_ring(true);
  v1::AttachSharedMemoryResponse resp;
  grpc::ClientContext ctx;
  SetDeadline(ctx, timeout);
  if (absl::Status s = FromGrpc(stub.AttachSharedMemory(&ctx, req, &resp));
      !s.ok()) {
    return s;
  }
  {
    std::lock_guard<std::mutex> lock(attach_mu_);
    segment_id_ = resp.segment_id();
    capability_ = resp.capability();
  }
  {
    // Slots a previous server left behind (it died mid-request, or a
    // waiter gave up on them) are free again for the new one.
    std::lock_guard<std::mutex> lock(slots_mu_);
    for (uint32_t i = 0; i < ring::kSlots; ++i) {
      if (!slot_owned_[i]) ring::Word(Slots()[i].state).store(ring::kFree);
    }
  }
  stalled_ = false;
  ring_ = resp.ring();
  return absl::OkStatus();
}

absl::Status SharedArena::Reattach(const std::string& lost_capability,
                                   v1::TensorPager::Stub& stub,
                                   absl::Duration timeout) {
  std::lock_guard<std::mutex> reattach(reattach_mu_);
  {
    std::lock_guard<std::mutex> lock(attach_mu_);
    if (capability_ != lost_capability) return absl::OkStatus();
  }
  return Attach(stub, timeout);
}

std::optional<SharedArena::RingReply> SharedArena::Call(
    const RingCall& call, absl::Duration timeout) {
  if (!ring_.load(std::memory_order_acquire)) return std::nullopt;
  ring::Header& header =
      *reinterpret_cast<ring::Header*>(base_ + ring::kRingOffset);
  if (stalled_.load()) {
    // A request went unclaimed while the heartbeat stood still: use the
    // RPCs until the server shows signs of life (or is attached again).
    if (ring::Word(header.heartbeat).load() == stalled_beat_.load()) {
      return std::nullopt;
    }
    stalled_ = false;
  }
  if (call.ns.size() > ring::kMaxNamespaceBytes ||
      call.id.size() > ring::kMaxIdBytes) {
    return std::nullopt;  // the RPC path reports the bad name
  }
  uint32_t index = ring::kSlots;
  {
    std::lock_guard<std::mutex> lock(slots_mu_);
    for (uint32_t i = 0; i < ring::kSlots; ++i) {
      uint32_t expected = ring::kFree;
      if (!slot_owned_[i] &&
          ring::Word(Slots()[i].state)
              .compare_exchange_strong(expected, ring::kFilling)) {
        slot_owned_[i] = true;
        index = i;
        break;
      }
    }
  }
  if (index == ring::kSlots) return std::nullopt;
  auto release = [&](bool free_slot) {
    if (free_slot) ring::Word(Slots()[index].state).store(ring::kFree);
    std::lock_guard<std::mutex> lock(slots_mu_);
    slot_owned_[index] = false;
  };
  ring::Slot& slot = Slots()[index];
  slot.op = call.op;
  slot.namespace_bytes = static_cast<uint32_t>(call.ns.size());
  if (!call.ns.empty()) {
    std::memcpy(slot.namespace_, call.ns.data(), call.ns.size());
  }
  slot.id_bytes = static_cast<uint32_t>(call.id.size());
  if (!call.id.empty()) std::memcpy(slot.id, call.id.data(), call.id.size());
  slot.offset = call.offset;
  slot.length = call.length;
  slot.data_offset = call.data_offset;
  slot.data_length = call.data_length;
  slot.durable = !call.durable ? 0 : (*call.durable ? 2 : 1);
  ring::Word(slot.state).store(ring::kSubmitted, std::memory_order_release);
  ring::Word(header.doorbell).fetch_add(1);
  if (ring::Word(header.server_waiting).load() != 0)
    ring::FutexWake(&header.doorbell, 1);

  // Spin briefly (the answer often comes within a futex round trip), then
  // sleep on the slot, watching the server's heartbeat.
  const absl::Time start = absl::Now();
  uint32_t beat = ring::Word(header.heartbeat).load();
  absl::Time beat_seen = start;
  for (int spins = 0;; ++spins) {
    const uint32_t state =
        ring::Word(slot.state).load(std::memory_order_acquire);
    if (state == ring::kDone) break;
    if (spins < kSpins) continue;
    ring::FutexWait(&slot.state, state, kWaitSlice);
    const absl::Time now = absl::Now();
    if (const uint32_t b = ring::Word(header.heartbeat).load(); b != beat) {
      beat = b;
      beat_seen = now;
    }
    if (now - beat_seen > kServerSilence) {
      // The server is gone. Unclaimed: take the request back for the RPCs
      // (which attach again). Claimed: it died mid-request, as a call
      // would fail when its server dies.
      stalled_beat_ = beat;
      stalled_ = true;
      uint32_t expected = ring::kSubmitted;
      if (ring::Word(slot.state)
              .compare_exchange_strong(expected, ring::kFree)) {
        release(/*free_slot=*/false);
        return std::nullopt;
      }
      if (expected == ring::kProcessing) {
        release(/*free_slot=*/false);
        RingReply lost;
        lost.status = absl::UnavailableError(
            "tensorpagerd stopped while serving a shared-memory request; "
            "retry once it is back");
        return lost;
      }
    }
    if (now - start > timeout) {
      // Left to the server: the slot frees itself at the next attach.
      release(/*free_slot=*/false);
      RingReply late;
      late.status = absl::DeadlineExceededError(absl::StrCat(
          "tensorpagerd did not answer a shared-memory request within ",
          absl::FormatDuration(timeout)));
      return late;
    }
  }
  RingReply reply;
  reply.status = absl::Status(
      static_cast<absl::StatusCode>(slot.code),
      absl::string_view(
          slot.message,
          std::min<uint32_t>(slot.message_bytes, ring::kMaxMessageBytes)));
  reply.length = slot.result_length;
  reply.hit = slot.hit != 0;
  reply.durable = slot.result_durable != 0;
  reply.info.assign(slot.info,
                    std::min<uint32_t>(slot.info_bytes, ring::kInfoBytes));
  release(/*free_slot=*/true);
  return reply;
}

ring::Slot* SharedArena::Slots() {
  return reinterpret_cast<ring::Slot*>(base_ + ring::kSlotsOffset);
}

SharedArena::~SharedArena() {
  ::munmap(base_, size_);
  ::close(fd_);
}

void SharedArena::Detach(v1::TensorPager::Stub& stub, absl::Duration timeout) {
  v1::DetachSharedMemoryRequest req;
  {
    std::lock_guard<std::mutex> lock(attach_mu_);
    req.set_segment_id(segment_id_);
    req.set_capability(capability_);
  }
  v1::DetachSharedMemoryResponse resp;
  grpc::ClientContext ctx;
  SetDeadline(ctx, timeout);
  stub.DetachSharedMemory(&ctx, req, &resp).ok();
}

void SharedArena::Range::Describe(v1::SharedRange* out) const {
  {
    std::lock_guard<std::mutex> lock(arena_->attach_mu_);
    out->set_segment_id(arena_->segment_id_);
    out->set_capability(arena_->capability_);
  }
  out->set_offset(offset_);
  out->set_length(length_);
}

std::optional<SharedArena::Range> SharedArena::Allocate(uint64_t length) {
  const uint64_t want = RoundUp(length == 0 ? 1 : length);
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = free_.begin(); it != free_.end(); ++it) {
    if (it->second < want) continue;
    const uint64_t offset = it->first;
    const uint64_t rest = it->second - want;
    free_.erase(it);
    if (rest > 0) free_.emplace(offset + want, rest);
    return Range(this, offset, want);
  }
  return std::nullopt;
}

void SharedArena::Free(uint64_t offset, uint64_t length) {
  std::lock_guard<std::mutex> lock(mu_);
  auto next = free_.lower_bound(offset);
  if (next != free_.end() && offset + length == next->first) {
    length += next->second;
    next = free_.erase(next);
  }
  if (next != free_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == offset) {
      prev->second += length;
      return;
    }
  }
  free_.emplace(offset, length);
}

SharedArena::Range::Range(Range&& other) noexcept
    : arena_(other.arena_),
      data_(other.data_),
      offset_(other.offset_),
      length_(other.length_) {
  other.arena_ = nullptr;
}

SharedArena::Range::~Range() {
  if (arena_ != nullptr) arena_->Free(offset_, length_);
}

}  // namespace tensorpager::internal
