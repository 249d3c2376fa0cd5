// Orderings ThreadSanitizer cannot see, announced to it: HappensBefore(key)
// on one thread and a later HappensAfter(key) on another order everything
// before the first ahead of everything after the second. For orderings that
// pass through another process (a client's shared memory) or through
// libraries built without TSan (Debian's gRPC). No-ops in other builds.
#ifndef TENSORPAGER_STORAGE_BASE_HAPPENS_BEFORE_H_
#define TENSORPAGER_STORAGE_BASE_HAPPENS_BEFORE_H_

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#endif

namespace tensorpager {

inline void HappensBefore([[maybe_unused]] const void* key) {
#if defined(__SANITIZE_THREAD__)
  __tsan_release(const_cast<void*>(key));
#endif
}

inline void HappensAfter([[maybe_unused]] const void* key) {
#if defined(__SANITIZE_THREAD__)
  __tsan_acquire(const_cast<void*>(key));
#endif
}

}  // namespace tensorpager

#endif  // TENSORPAGER_STORAGE_BASE_HAPPENS_BEFORE_H_
