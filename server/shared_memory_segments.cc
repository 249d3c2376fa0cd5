#include "server/shared_memory_segments.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "storage/base/happens_before.h"

namespace tensorpager::server {
namespace {

// Closes a descriptor on every path.
struct Fd {
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int fd;
};

// Fills `out` from the kernel's random source.
bool RandomBytes(absl::Span<char> out) {
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::getrandom(out.data() + done, out.size() - done, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

// Compares without stopping at the first difference, so the time taken
// says nothing about how much of a guessed capability was right.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= a[i] ^ b[i];
  return diff == 0;
}

}  // namespace

// A pidfd of the client: it polls readable once the process exits. Where
// the kernel has no pidfd_open the segment stays until detached.
struct SharedMemorySegments::ProcessWatch {
  explicit ProcessWatch(int pid)
      : pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0))) {}
  bool Exited() const {
    if (pidfd.fd < 0) return false;
    pollfd p{pidfd.fd, POLLIN, 0};
    return ::poll(&p, 1, 0) == 1;
  }
  Fd pidfd;
};

SharedMemorySegments::Segment SharedMemorySegments::Remove(
    uint64_t segment_id) {
  auto it = segments_.find(segment_id);
  Segment gone = std::move(it->second);
  segments_.erase(it);
  auto& [segments, rings] = per_user_[gone.owner];
  --segments;
  if (gone.ring != nullptr) {
    --rings_;
    --rings;
  }
  if (segments == 0) per_user_.erase(gone.owner);
  return gone;
}

void SharedMemorySegments::ReapExited() {
  std::vector<Segment> gone;
  {
    MutexLock lock(&mu_);
    std::vector<uint64_t> exited;
    for (const auto& [id, segment] : segments_) {
      if (segment.client != nullptr && segment.client->Exited()) {
        exited.push_back(id);
      }
    }
    for (uint64_t id : exited) gone.push_back(Remove(id));
  }
  // Rings stop (their threads join) here, outside the lock.
  gone.clear();
  HappensBefore(this);
}

SharedMemorySegments::Lease::~Lease() {
  if (mapping_ != nullptr) HappensBefore(mapping_.get());
}

SharedMemorySegments::~SharedMemorySegments() {
  // Rings stopped by Detach or ReapExited were joined on threads whose
  // ordering before this one passes through gRPC, which Debian builds
  // without TSan.
  HappensAfter(this);
}

absl::StatusOr<SharedMemorySegments::Attached> SharedMemorySegments::Attach(
    const auth::Caller& owner_caller, uid_t caller_uid, int pid, int fd,
    uint64_t size_bytes, absl::string_view token, bool want_ring) {
  if (token.size() < 8 || token.size() > 64 || token.size() > size_bytes) {
    return absl::InvalidArgumentError(
        "token must be the segment's first 8 to 64 bytes");
  }
  if (pid <= 0 || fd < 0) {
    return absl::InvalidArgumentError(
        "pid and fd must name the client's memfd (pid > 0, fd >= 0)");
  }
  if (size_bytes == 0 || size_bytes > limits_.max_segment_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("segment size must be 1 to ",
                                                   limits_.max_segment_bytes,
                                                   " bytes, not ", size_bytes));
  }
  // One answer for every way the descriptor is not the caller's to give
  // (no such process, another user's process, no such fd, a file of
  // another user), so Attach tells nobody what other users hold.
  const std::string path = absl::StrCat("/proc/", pid, "/fd/", fd);
  const absl::Status not_yours = absl::PermissionDeniedError(absl::StrCat(
      "process ", pid, " has no descriptor ", fd,
      " of the calling user that the server may attach (the client must run "
      "as the user it connects as, in the server's PID namespace); use the "
      "gRPC data path"));
  struct stat owner;
  if (::stat(absl::StrCat("/proc/", pid).c_str(), &owner) != 0 ||
      owner.st_uid != caller_uid) {
    return not_yours;
  }
  Fd file(::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  struct stat st;
  // The process may have exited and its pid been reused since the check
  // above: the file itself must be the caller's too.
  if (file.fd < 0 || ::fstat(file.fd, &st) != 0 || st.st_uid != caller_uid ||
      !S_ISREG(st.st_mode)) {
    return not_yours;
  }
  const int seals = ::fcntl(file.fd, F_GET_SEALS);
  if (seals < 0 || (seals & F_SEAL_SHRINK) == 0 || (seals & F_SEAL_GROW) == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(path,
                     " is not a memfd sealed against shrinking and growing "
                     "(memfd_create with MFD_ALLOW_SEALING, then F_ADD_SEALS "
                     "F_SEAL_SHRINK | F_SEAL_GROW)"));
  }
  if (static_cast<uint64_t>(st.st_size) != size_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("segment ", path, " is ", st.st_size, " bytes, not the ",
                     size_bytes, " the request names"));
  }
  void* p = ::mmap(nullptr, size_bytes, PROT_READ | PROT_WRITE, MAP_SHARED,
                   file.fd, 0);
  if (p == MAP_FAILED) {
    return absl::ResourceExhaustedError(absl::StrCat("cannot map ", size_bytes,
                                                     " bytes of ", path, ": ",
                                                     std::strerror(errno)));
  }
  std::shared_ptr<void> mapping(
      p, [size_bytes](void* q) { ::munmap(q, size_bytes); });
  if (std::memcmp(p, token.data(), token.size()) != 0) {
    return absl::PermissionDeniedError(absl::StrCat(
        path,
        " does not start with the request's token: it is not the "
        "client's segment (different PID namespace?); use the gRPC "
        "data path"));
  }
  ReapExited();
  std::string capability(kCapabilityBytes, '\0');
  if (!RandomBytes(absl::MakeSpan(capability))) {
    return absl::UnavailableError(
        "the kernel gave no random bytes for the segment's capability; "
        "retry");
  }
  MutexLock lock(&mu_);
  if (segments_.size() >= limits_.max_segments) {
    return absl::ResourceExhaustedError(
        absl::StrCat(limits_.max_segments,
                     " shared-memory segments are attached; detach unused "
                     "ones (Client::Close does)"));
  }
  auto& [user_segments, user_rings] = per_user_[caller_uid];
  if (user_segments >= limits_.max_segments_per_user) {
    if (user_segments == 0) per_user_.erase(caller_uid);
    return absl::ResourceExhaustedError(absl::StrCat(
        "user ", caller_uid, " has ", limits_.max_segments_per_user,
        " shared-memory segments attached, the most one user may; detach "
        "unused ones (Client::Close does)"));
  }
  Segment segment{mapping,
                  size_bytes,
                  caller_uid,
                  owner_caller.tenant_name(),
                  capability,
                  nullptr,
                  std::make_shared<ProcessWatch>(pid)};
  if (want_ring && ring_handler_ && rings_ < limits_.max_rings &&
      user_rings < limits_.max_rings_per_user) {
    absl::StatusOr<std::unique_ptr<shared_memory::RingServer>> ring =
        shared_memory::RingServer::Start(
            mapping, size_bytes,
            [handler = ring_handler_, owner_caller](
                const shared_memory::RingRequest& request,
                absl::Span<std::byte> data, absl::Span<std::byte> segment) {
              return handler(owner_caller, request, data, segment);
            });
    // Without a ring (no thread to spare) the segment still serves the
    // RPCs.
    if (ring.ok()) {
      segment.ring = *std::move(ring);
      ++rings_;
      ++user_rings;
    } else if (ring.status().code() != absl::StatusCode::kResourceExhausted) {
      if (user_segments == 0) per_user_.erase(caller_uid);
      return ring.status();
    }
  }
  ++user_segments;
  Attached attached{next_id_++, capability, segment.ring != nullptr};
  segments_.emplace(attached.segment_id, std::move(segment));
  return attached;
}

const SharedMemorySegments::Segment* SharedMemorySegments::FindOwned(
    const auth::Caller& caller, std::optional<uid_t> caller_uid,
    uint64_t segment_id, absl::string_view capability) const {
  if (!caller_uid) return nullptr;
  auto it = segments_.find(segment_id);
  if (it == segments_.end() || it->second.owner != *caller_uid ||
      it->second.tenant != caller.tenant_name() ||
      !ConstantTimeEquals(it->second.capability, capability)) {
    return nullptr;
  }
  return &it->second;
}

namespace {

absl::Status NotAttached(uint64_t segment_id) {
  return absl::NotFoundError(
      absl::StrCat("shared-memory segment ", segment_id,
                   " is not attached for this caller; attach it again "
                   "(AttachSharedMemory) and pass the capability it returns"));
}

}  // namespace

absl::Status SharedMemorySegments::Detach(const auth::Caller& caller,
                                          std::optional<uid_t> caller_uid,
                                          uint64_t segment_id,
                                          absl::string_view capability) {
  Segment gone;
  {
    MutexLock lock(&mu_);
    if (FindOwned(caller, caller_uid, segment_id, capability) == nullptr) {
      return NotAttached(segment_id);
    }
    gone = Remove(segment_id);
  }
  // The ring's threads are joined here, outside the lock: they may be
  // finishing a request.
  gone.ring.reset();
  HappensBefore(this);
  return absl::OkStatus();
}

absl::StatusOr<SharedMemorySegments::Lease> SharedMemorySegments::Resolve(
    const auth::Caller& caller, std::optional<uid_t> caller_uid,
    uint64_t segment_id, absl::string_view capability, uint64_t offset,
    uint64_t length) const {
  ReaderMutexLock lock(&mu_);
  const Segment* s = FindOwned(caller, caller_uid, segment_id, capability);
  if (s == nullptr) return NotAttached(segment_id);
  if (offset > s->size_bytes || length > s->size_bytes - offset) {
    return absl::InvalidArgumentError(
        absl::StrCat("range [", offset, ", ", offset + length,
                     ") lies outside shared-memory segment ", segment_id,
                     " of ", s->size_bytes, " bytes"));
  }
  // Requests for one segment are ordered by its client, in another process.
  HappensAfter(s->mapping.get());
  Lease lease;
  lease.mapping_ = s->mapping;
  lease.bytes_ = absl::Span<std::byte>(
      static_cast<std::byte*>(s->mapping.get()) + offset, length);
  return lease;
}

uint32_t SharedMemorySegments::size() const {
  ReaderMutexLock lock(&mu_);
  return static_cast<uint32_t>(segments_.size());
}

uint32_t SharedMemorySegments::rings() const {
  ReaderMutexLock lock(&mu_);
  return rings_;
}

}  // namespace tensorpager::server
