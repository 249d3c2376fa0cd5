// The server's half of the ring (ring_layout.h): serves the ring of one
// attached segment on its own threads, so a client on this host moves
// block bytes with no RPC at all: a futex round trip costs ~13 µs here, a
// gRPC unary call 100-190 µs. What a request does is the handler's
// business; this half only reads the wire and answers on it.
#ifndef TENSORPAGER_STORAGE_SHARED_MEMORY_RING_SERVER_H_
#define TENSORPAGER_STORAGE_SHARED_MEMORY_RING_SERVER_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "storage/shared_memory/ring_layout.h"

namespace tensorpager::shared_memory {

// Decodes the request of one slot. The slot lives in memory the client
// writes, so everything in it is untrusted: a pure function, apart from
// the ring's threads, so that it can be tested and fuzzed on its own
// (tests/fuzz/ring_slot_fuzzer.cc).
//
// Reads every field of `slot` once (the client may scribble on it
// meanwhile), clamps the namespace and id lengths to their fields and
// checks the op and the data range against the segment of
// `segment_bytes`: the returned request's data range lies at or after
// kDataOffset and within the segment. INVALID_ARGUMENT for an unknown op
// or a range outside the segment's data area.
absl::StatusOr<RingRequest> DecodeRequest(const RingSlot& slot,
                                          uint64_t segment_bytes);
// Whether [offset, +length) lies in the data area of a segment of
// `segment_bytes` (at or after kDataOffset, before its end).
bool InDataArea(uint64_t offset, uint64_t length, uint64_t segment_bytes);

// Writes `completion` into the slot's result fields (message and info cut
// to their fields); the caller then publishes the slot Done.
void EncodeCompletion(const RingCompletion& completion, RingSlot& slot);

class RingServer {
 public:
  // Carries out one decoded request; `data` is the request's range of the
  // segment, already checked against it, and `segment` the whole segment
  // (a batch's reply area and its blocks' ranges lie in it).
  using Handler = std::function<RingCompletion(const RingRequest& request,
                                               absl::Span<std::byte> data,
                                               absl::Span<std::byte> segment)>;

  // Checks the ring header in `segment` and starts serving it.
  static absl::StatusOr<std::unique_ptr<RingServer>> Start(
      std::shared_ptr<void> mapping, uint64_t size_bytes, Handler handler);
  // Stops serving (a request in progress finishes first).
  ~RingServer();
  RingServer(const RingServer&) = delete;
  RingServer& operator=(const RingServer&) = delete;

 private:
  RingServer(std::shared_ptr<void> mapping, uint64_t size_bytes,
             Handler handler);
  RingHeader& header() const;
  void Loop();
  void Beat();
  // Serves every submitted slot once; false when there was none.
  bool ServeSubmitted();
  void Serve(uint32_t slot);

  std::shared_ptr<void> mapping_;  // keeps the segment mapped
  std::byte* base_;
  uint64_t size_;
  Handler handler_;
  std::atomic<bool> stop_{false};
  // Eight (kThreads): a client's streams each wait in the store on their
  // own synced metadata write or swap-in, and with several waiting at once
  // RocksDB commits their writes in shared syncs (64 KiB rewrites from 8
  // streams: 0.18 GiB/s with two threads, 0.28 with eight). The ones
  // without work sleep on the doorbell after a 20 µs spin.
  std::vector<std::thread> threads_;
  // Beats while the process lives, busy or not, so a client can tell a
  // dead server from a slow request.
  std::thread heartbeat_;
};

}  // namespace tensorpager::shared_memory

#endif  // TENSORPAGER_STORAGE_SHARED_MEMORY_RING_SERVER_H_
