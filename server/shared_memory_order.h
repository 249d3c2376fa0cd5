// The order of a server's accesses to a client's shared memory is set by
// the client, in another process: a request's bytes are the client's to
// reuse once the server has published its result, and a later request may
// hand the same bytes to another server thread. ThreadSanitizer sees only
// this process, so the threads that serve one arena announce that order to
// it (acquire on taking a request, release on publishing its result), keyed
// by the arena's address. No-ops in other builds.
#ifndef TENSORPAGER_SERVER_SHARED_MEMORY_ORDER_H_
#define TENSORPAGER_SERVER_SHARED_MEMORY_ORDER_H_

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#endif

namespace tensorpager::server {

inline void TakeSharedMemoryRequest([[maybe_unused]] const void* arena) {
#if defined(__SANITIZE_THREAD__)
  __tsan_acquire(const_cast<void*>(arena));
#endif
}

inline void PublishSharedMemoryResult([[maybe_unused]] const void* arena) {
#if defined(__SANITIZE_THREAD__)
  __tsan_release(const_cast<void*>(arena));
#endif
}

}  // namespace tensorpager::server

#endif  // TENSORPAGER_SERVER_SHARED_MEMORY_ORDER_H_
