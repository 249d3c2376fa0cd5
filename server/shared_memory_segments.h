// Shared-memory segments that clients on the same host attach, so block
// bytes cross by memcpy instead of a gRPC stream (the shared-memory data
// path of the SDK). A segment is a client's sealed memfd, opened through
// /proc/<pid>/fd/<fd>: the seals (no shrink, no grow) guarantee that the
// mapping stays valid however the client behaves, so a copy can never hit
// SIGBUS. The server must be able to open the client's descriptors (same
// user or root, same PID namespace); where it cannot, Attach fails with
// PERMISSION_DENIED or NOT_FOUND and the client keeps using gRPC streams.
#ifndef TENSORPAGER_SERVER_SHARED_MEMORY_SEGMENTS_H_
#define TENSORPAGER_SERVER_SHARED_MEMORY_SEGMENTS_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "server/shared_memory_ring.h"
#include "storage/shared_mutex.h"

namespace tensorpager::server {

class SharedMemorySegments {
 public:
  struct Limits {
    uint32_t max_segments = 1024;
    uint64_t max_segment_bytes = 64ull << 30;
    // Each served ring holds a thread.
    uint32_t max_rings = 64;
  };
  // `ring_handler` carries out ring requests; empty: rings are refused.
  SharedMemorySegments(Limits limits, SharedMemoryRing::Handler ring_handler)
      : limits_(limits), ring_handler_(std::move(ring_handler)) {}
  SharedMemorySegments(const SharedMemorySegments&) = delete;
  SharedMemorySegments& operator=(const SharedMemorySegments&) = delete;
  ~SharedMemorySegments();

  struct Attached {
    uint64_t segment_id = 0;
    bool ring = false;  // its request ring is being served
  };
  // `token` must equal the segment's first bytes (8 to 64 of them). With
  // `want_ring`, the segment's request ring is served when the server has a
  // ring thread to spare (else Attached::ring is false and the client uses
  // the RPCs).
  absl::StatusOr<Attached> Attach(int pid, int fd, uint64_t size_bytes,
                                  absl::string_view token, bool want_ring);
  absl::Status Detach(uint64_t segment_id);

  // A mapped range, valid while the lease lives (a concurrent Detach only
  // unmaps once every lease is gone).
  class Lease {
   public:
    Lease() = default;
    Lease(Lease&&) = default;
    Lease& operator=(Lease&&) = default;
    // The client may reuse the range once the call that holds the lease
    // has answered; tells TSan so (see storage/happens_before.h).
    ~Lease();

    absl::Span<std::byte> bytes() const { return bytes_; }

   private:
    friend class SharedMemorySegments;
    std::shared_ptr<void> mapping_;
    absl::Span<std::byte> bytes_;
  };
  // INVALID_ARGUMENT for a range outside the segment, NOT_FOUND for an
  // unknown (or detached) segment.
  absl::StatusOr<Lease> Resolve(uint64_t segment_id, uint64_t offset,
                                uint64_t length) const;

  uint32_t size() const;
  uint32_t rings() const;

 private:
  struct ProcessWatch;
  struct Segment {
    std::shared_ptr<void> mapping;  // munmap when the last user goes
    uint64_t size_bytes = 0;
    std::unique_ptr<SharedMemoryRing> ring;
    std::shared_ptr<ProcessWatch> client;  // tells when the client exits
  };
  // Detaches the segments of clients that exited without detaching, so
  // their memory and ring threads go back.
  void ReapExited();
  const Limits limits_;
  const SharedMemoryRing::Handler ring_handler_;
  mutable SharedMutex mu_;
  absl::flat_hash_map<uint64_t, Segment> segments_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  uint32_t rings_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace tensorpager::server

#endif  // TENSORPAGER_SERVER_SHARED_MEMORY_SEGMENTS_H_
