// The client's half of the shared-memory data path: one sealed memfd
// mapped here and attached by tensorpagerd (AttachSharedMemory), carved into
// transient ranges, one per transfer in flight. A transfer that finds no
// room (or a server that cannot attach) uses the gRPC streams instead.
#ifndef TENSORPAGER_CLIENT_SDK_SRC_SHARED_ARENA_H_
#define TENSORPAGER_CLIENT_SDK_SRC_SHARED_ARENA_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tensorpager/v1/tensorpager.grpc.pb.h"

namespace tensorpager::internal {

class SharedArena {
 public:
  // Creates the memfd and has the server attach it. An error means the
  // shared-memory path is unavailable (say why once, then use streams).
  static absl::StatusOr<std::unique_ptr<SharedArena>> Create(
      v1::TensorPager::Stub& stub, uint64_t size_bytes, absl::Duration timeout);
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
    uint64_t segment_id() const { return arena_->segment_id_.load(); }

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

  // Attaches again after the server forgot the segment (it restarted).
  absl::Status Reattach(v1::TensorPager::Stub& stub, absl::Duration timeout);
  // Detaches from the server (best effort; the server also forgets the
  // segment when it restarts).
  void Detach(v1::TensorPager::Stub& stub, absl::Duration timeout);

 private:
  SharedArena(int fd, std::byte* base, uint64_t size);
  void Free(uint64_t offset, uint64_t length);
  absl::Status Attach(v1::TensorPager::Stub& stub, absl::Duration timeout);

  int fd_;
  std::byte* base_;
  uint64_t size_;
  std::atomic<uint64_t> segment_id_{0};
  std::mutex mu_;
  std::map<uint64_t, uint64_t> free_;  // offset -> length, coalesced
};

}  // namespace tensorpager::internal

#endif  // TENSORPAGER_CLIENT_SDK_SRC_SHARED_ARENA_H_
