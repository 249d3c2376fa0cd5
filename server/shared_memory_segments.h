// Shared-memory segments that clients on the same host attach, so block
// bytes cross by memcpy instead of a gRPC stream (the shared-memory data
// path of the SDK). A segment is a client's sealed memfd, opened through
// /proc/<pid>/fd/<fd>: the seals (no shrink, no grow) guarantee that the
// mapping stays valid however the client behaves, so a copy can never hit
// SIGBUS. A segment belongs to the user who attached it: the server opens
// only descriptors of processes owned by the verified caller, and every
// later call must come from that user with the segment's capability.
// Where the server cannot attach (another PID namespace, a caller it
// cannot identify), Attach fails and the client keeps using gRPC streams.
#ifndef TENSORPAGER_SERVER_SHARED_MEMORY_SEGMENTS_H_
#define TENSORPAGER_SERVER_SHARED_MEMORY_SEGMENTS_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "server/auth/authenticator.h"
#include "storage/base/shared_mutex.h"
#include "storage/shared_memory/ring_server.h"

namespace tensorpager::server {

class SharedMemorySegments {
 public:
  struct Limits {
    uint32_t max_segments = 1024;
    uint64_t max_segment_bytes = 64ull << 30;
    // Each served ring holds threads.
    uint32_t max_rings = 64;
    // What one user (uid) may hold of the above, so one client cannot take
    // every segment or ring thread from the others.
    uint32_t max_segments_per_user = 64;
    uint32_t max_rings_per_user = 8;
  };
  // Carries out a ring request for the segment's owner (the caller that
  // attached it: the shared-memory path authenticates once, at attach).
  using RingHandler = std::function<shared_memory::RingCompletion(
      const auth::Caller& owner, const shared_memory::RingRequest& request,
      absl::Span<std::byte> data, absl::Span<std::byte> segment)>;
  // `ring_handler` carries out ring requests; empty: rings are refused.
  SharedMemorySegments(Limits limits, RingHandler ring_handler)
      : limits_(limits), ring_handler_(std::move(ring_handler)) {}
  SharedMemorySegments(const SharedMemorySegments&) = delete;
  SharedMemorySegments& operator=(const SharedMemorySegments&) = delete;
  ~SharedMemorySegments();

  // Bytes of the capability Attach returns.
  static constexpr size_t kCapabilityBytes = 16;

  struct Attached {
    uint64_t segment_id = 0;
    // Unguessable: every later call on the segment must present it.
    std::string capability;
    bool ring = false;  // its request ring is being served
  };
  // Attaches memfd `fd` of process `pid` for the caller, whose user the
  // server verified (`caller_uid`): the process and the memfd must both
  // belong to that user, so nobody can attach another user's memory by
  // naming it. `token` must equal the segment's first bytes (8 to 64 of
  // them). With `want_ring`, the segment's request ring is served when the
  // server has a ring thread to spare (else Attached::ring is false and
  // the client uses the RPCs). The segment belongs to `owner`'s tenant too:
  // calls on it from another tenant are NOT_FOUND.
  absl::StatusOr<Attached> Attach(const auth::Caller& owner, uid_t caller_uid,
                                  int pid, int fd, uint64_t size_bytes,
                                  absl::string_view token, bool want_ring);
  // NOT_FOUND unless the segment is attached, belongs to `caller_uid` and
  // `capability` is its capability. A caller whose user the server could
  // not tell (nullopt) owns nothing.
  absl::Status Detach(const auth::Caller& caller,
                      std::optional<uid_t> caller_uid, uint64_t segment_id,
                      absl::string_view capability);

  // A mapped range, valid while the lease lives (a concurrent Detach only
  // unmaps once every lease is gone).
  class Lease {
   public:
    Lease() = default;
    Lease(Lease&&) = default;
    Lease& operator=(Lease&&) = default;
    // The client may reuse the range once the call that holds the lease
    // has answered; tells TSan so (see storage/base/happens_before.h).
    ~Lease();

    absl::Span<std::byte> bytes() const { return bytes_; }

   private:
    friend class SharedMemorySegments;
    std::shared_ptr<void> mapping_;
    absl::Span<std::byte> bytes_;
  };
  // NOT_FOUND for an unknown (or detached) segment, one of another user or
  // a wrong capability, all alike; INVALID_ARGUMENT for a range outside the
  // caller's segment.
  absl::StatusOr<Lease> Resolve(const auth::Caller& caller,
                                std::optional<uid_t> caller_uid,
                                uint64_t segment_id,
                                absl::string_view capability, uint64_t offset,
                                uint64_t length) const;

  uint32_t size() const;
  uint32_t rings() const;

 private:
  struct ProcessWatch;
  struct Segment {
    std::shared_ptr<void> mapping;  // munmap when the last user goes
    uint64_t size_bytes = 0;
    uid_t owner = 0;
    std::string tenant;  // "" with authentication off
    std::string capability;
    std::unique_ptr<shared_memory::RingServer> ring;
    std::shared_ptr<ProcessWatch> client;  // tells when the client exits
  };
  // The caller's segment, or null (unknown, another user's, wrong
  // capability: callers cannot tell these apart).
  const Segment* FindOwned(const auth::Caller& caller,
                           std::optional<uid_t> caller_uid, uint64_t segment_id,
                           absl::string_view capability) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Removes a segment from the books; the caller stops its ring outside
  // the lock.
  Segment Remove(uint64_t segment_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Detaches the segments of clients that exited without detaching, so
  // their memory and ring threads go back.
  void ReapExited();
  const Limits limits_;
  const RingHandler ring_handler_;
  mutable SharedMutex mu_;
  absl::flat_hash_map<uint64_t, Segment> segments_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  uint32_t rings_ ABSL_GUARDED_BY(mu_) = 0;
  // Segments and rings per user.
  absl::flat_hash_map<uid_t, std::pair<uint32_t, uint32_t>> per_user_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace tensorpager::server

#endif  // TENSORPAGER_SERVER_SHARED_MEMORY_SEGMENTS_H_
