#include "server/shared_memory_segments.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "storage/happens_before.h"

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

void SharedMemorySegments::ReapExited() {
  std::vector<Segment> gone;
  {
    MutexLock lock(&mu_);
    for (auto it = segments_.begin(); it != segments_.end();) {
      if (it->second.client == nullptr || !it->second.client->Exited()) {
        ++it;
        continue;
      }
      if (it->second.ring != nullptr) --rings_;
      gone.push_back(std::move(it->second));
      segments_.erase(it++);
    }
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
    int pid, int fd, uint64_t size_bytes, absl::string_view token,
    bool want_ring) {
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
  const std::string path = absl::StrCat("/proc/", pid, "/fd/", fd);
  Fd file(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (file.fd < 0) {
    const int err = errno;
    const std::string why = absl::StrCat(
        "cannot open the client's memfd at ", path, ": ", std::strerror(err),
        " (the server needs the client's user or root, and the same PID "
        "namespace); use the gRPC data path");
    if (err == ENOENT) return absl::NotFoundError(why);
    if (err == EACCES || err == EPERM) {
      return absl::PermissionDeniedError(why);
    }
    return absl::FailedPreconditionError(why);
  }
  const int seals = ::fcntl(file.fd, F_GET_SEALS);
  if (seals < 0 || (seals & F_SEAL_SHRINK) == 0 || (seals & F_SEAL_GROW) == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(path,
                     " is not a memfd sealed against shrinking and growing "
                     "(memfd_create with MFD_ALLOW_SEALING, then F_ADD_SEALS "
                     "F_SEAL_SHRINK | F_SEAL_GROW)"));
  }
  struct stat st;
  if (::fstat(file.fd, &st) != 0 ||
      static_cast<uint64_t>(st.st_size) != size_bytes) {
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
  MutexLock lock(&mu_);
  if (segments_.size() >= limits_.max_segments) {
    return absl::ResourceExhaustedError(
        absl::StrCat(limits_.max_segments,
                     " shared-memory segments are attached; detach unused "
                     "ones (Client::Close does)"));
  }
  Segment segment{mapping, size_bytes, nullptr,
                  std::make_shared<ProcessWatch>(pid)};
  if (want_ring && ring_handler_ && rings_ < limits_.max_rings) {
    absl::StatusOr<std::unique_ptr<SharedMemoryRing>> ring =
        SharedMemoryRing::Start(mapping, size_bytes, ring_handler_);
    if (!ring.ok()) return ring.status();
    segment.ring = *std::move(ring);
    ++rings_;
  }
  Attached attached{next_id_++, segment.ring != nullptr};
  segments_.emplace(attached.segment_id, std::move(segment));
  return attached;
}

absl::Status SharedMemorySegments::Detach(uint64_t segment_id) {
  Segment gone;
  {
    MutexLock lock(&mu_);
    auto it = segments_.find(segment_id);
    if (it == segments_.end()) {
      return absl::NotFoundError(absl::StrCat("shared-memory segment ",
                                              segment_id, " is not attached"));
    }
    gone = std::move(it->second);
    segments_.erase(it);
    if (gone.ring != nullptr) --rings_;
  }
  // The ring's threads are joined here, outside the lock: they may be
  // finishing a request.
  gone.ring.reset();
  HappensBefore(this);
  return absl::OkStatus();
}

absl::StatusOr<SharedMemorySegments::Lease> SharedMemorySegments::Resolve(
    uint64_t segment_id, uint64_t offset, uint64_t length) const {
  ReaderMutexLock lock(&mu_);
  auto it = segments_.find(segment_id);
  if (it == segments_.end()) {
    return absl::NotFoundError(
        absl::StrCat("shared-memory segment ", segment_id,
                     " is not attached; attach it again (AttachSharedMemory)"));
  }
  const Segment& s = it->second;
  if (offset > s.size_bytes || length > s.size_bytes - offset) {
    return absl::InvalidArgumentError(
        absl::StrCat("range [", offset, ", ", offset + length,
                     ") lies outside shared-memory segment ", segment_id,
                     " of ", s.size_bytes, " bytes"));
  }
  // Requests for one segment are ordered by its client, in another process.
  HappensAfter(s.mapping.get());
  Lease lease;
  lease.mapping_ = s.mapping;
  lease.bytes_ = absl::Span<std::byte>(
      static_cast<std::byte*>(s.mapping.get()) + offset, length);
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
