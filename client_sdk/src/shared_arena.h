// The SDK's arena: an allocator over the data area of one segment (a
// sealed memfd mapped here and attached by tensorpagerd with
// AttachSharedMemory; words as in storage/shared_memory/ring_layout.h),
// carved into transient ranges, one per transfer in flight. It owns the
// segment and the client's half of its ring. A transfer that finds no room
// (or a server that cannot attach) uses the gRPC streams instead.
#ifndef TENSORPAGER_CLIENT_SDK_SRC_SHARED_ARENA_H_
#define TENSORPAGER_CLIENT_SDK_SRC_SHARED_ARENA_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "storage/shared_memory/ring_client.h"
#include "tensorpager/device_runtime.h"
#include "tensorpager/v1/tensorpager.grpc.pb.h"

namespace tensorpager::internal {

class SharedArena {
 public:
  // Creates the segment (a memfd) and has the server attach it. An error means
  // the shared-memory path is unavailable (say why once, then use streams).
  // With devices in `runtime` (may be null), the arena is page-locked for
  // them (cudaHostRegister), so device transfers copy straight between it
  // and the GPU; where that fails they stage as before.
  static absl::StatusOr<std::unique_ptr<SharedArena>> Create(
      v1::TensorPager::Stub& stub, uint64_t size_bytes, absl::Duration timeout,
      DeviceRuntime* runtime = nullptr);
  ~SharedArena();
  SharedArena(const SharedArena&) = delete;
  SharedArena& operator=(const SharedArena&) = delete;

  // A range of the arena, given back when destroyed.
  class Range {
   public:
    Range(Range&& other) noexcept;
    Range& operator=(Range&&) = delete;
    ~Range();
    std::byte* data() const { return data_; }
    uint64_t offset() const { return offset_; }
    uint64_t length() const { return length_; }
    // Names the range for a shared-memory RPC: segment, capability, offset
    // and length.
    void Describe(v1::SharedRange* out) const;

   private:
    friend class SharedArena;
    Range(SharedArena* arena, uint64_t offset, uint64_t length)
        : arena_(arena),
          data_(arena->base_ + offset),
          offset_(offset),
          length_(length) {}
    SharedArena* arena_;
    std::byte* data_;
    uint64_t offset_;
    uint64_t length_;
  };
  // nullopt when no free range is large enough right now.
  std::optional<Range> Allocate(uint64_t length);

  // Whether devices can copy to and from the arena directly.
  bool device_registered() const { return registered_runtime_ != nullptr; }

  // The segment's ring: a transfer with no RPC, when the server serves it.
  shared_memory::RingClient& ring() { return ring_; }

  // Has the server attach the segment: at creation, and again after the
  // server forgot it (it restarted).
  absl::Status Attach(v1::TensorPager::Stub& stub, absl::Duration timeout);
  // Attach again after a call that named the segment by `lost_capability`
  // found it forgotten, unless another thread already did: every transfer
  // in flight when the server restarted fails alike, and each attach makes
  // a segment (and a ring with its server threads) that only a detach or
  // this process's exit frees. (The capability, not the id: a restarted
  // server numbers its segments from 1 again.)
  absl::Status Reattach(const std::string& lost_capability,
                        v1::TensorPager::Stub& stub, absl::Duration timeout);
  // Detaches from the server (best effort; the server also forgets the
  // segment when it restarts).
  void Detach(v1::TensorPager::Stub& stub, absl::Duration timeout);

 private:
  SharedArena(int fd, std::byte* base, uint64_t size);
  void Free(uint64_t offset, uint64_t length);

  int fd_;
  std::byte* base_;
  uint64_t size_;
  // The runtime that page-locked the arena; null when it is not.
  DeviceRuntime* registered_runtime_ = nullptr;
  std::mutex reattach_mu_;  // one Reattach at a time
  // What Attach got back; every RPC on the segment names both.
  mutable std::mutex attach_mu_;
  uint64_t segment_id_ = 0;
  std::string capability_;
  shared_memory::RingClient ring_;
  std::mutex mu_;
  std::map<uint64_t, uint64_t> free_;  // offset -> length, coalesced
};

}  // namespace tensorpager::internal

#endif  // TENSORPAGER_CLIENT_SDK_SRC_SHARED_ARENA_H_
