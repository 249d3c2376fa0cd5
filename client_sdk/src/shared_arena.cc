#include "client_sdk/src/shared_arena.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

#include "absl/strings/str_cat.h"
#include "client_sdk/src/rpc_util.h"
#include "storage/shared_memory/ring_layout.h"

namespace tensorpager::internal {
namespace {

// Ranges start on whole pages so transfers stay aligned. The first page
// holds the token that identifies the segment to the server.
constexpr uint64_t kGranule = 4096;
constexpr size_t kTokenBytes = 16;

uint64_t RoundUp(uint64_t n) {
  return (n + kGranule - 1) / kGranule * kGranule;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SharedArena>> SharedArena::Create(
    v1::TensorPager::Stub& stub, uint64_t size_bytes, absl::Duration timeout,
    DeviceRuntime* runtime) {
  size_bytes = RoundUp(
      std::max<uint64_t>(size_bytes, shared_memory::kDataOffset + kGranule));
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
  if (runtime != nullptr && runtime->device_count() > 0 &&
      runtime->RegisterHost(arena->base_, arena->size_).ok()) {
    arena->registered_runtime_ = runtime;
  }
  return arena;
}

SharedArena::SharedArena(int fd, std::byte* base, uint64_t size)
    : fd_(fd), base_(base), size_(size), ring_(base) {
  // Block bytes go in the data area, after the token page and the ring.
  free_.emplace(shared_memory::kDataOffset, size - shared_memory::kDataOffset);
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
  ring_.Reset(resp.ring());
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

SharedArena::~SharedArena() {
  if (registered_runtime_ != nullptr)
    registered_runtime_->UnregisterHost(base_);
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
  // Best effort: the client is going away either way, and a segment the
  // server still holds is reaped once this process has exited.
  static_cast<void>(stub.DetachSharedMemory(&ctx, req, &resp));
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
