// The ring protocol's primitives on a shared word (ring_layout.h): atomic
// access, and shared (not FUTEX_PRIVATE) futex waits and wakes, since the
// word lives in another process's mapping of the segment.
#ifndef TENSORPAGER_STORAGE_SHARED_MEMORY_FUTEX_H_
#define TENSORPAGER_STORAGE_SHARED_MEMORY_FUTEX_H_

#include <atomic>
#include <chrono>
#include <cstdint>

namespace tensorpager::shared_memory {

inline std::atomic_ref<uint32_t> Word(uint32_t& word) {
  return std::atomic_ref<uint32_t>(word);
}

// Returns when woken, when *word != expected, or after `timeout`.
void FutexWait(uint32_t* word, uint32_t expected,
               std::chrono::microseconds timeout);

void FutexWake(uint32_t* word, int waiters);

}  // namespace tensorpager::shared_memory

#endif  // TENSORPAGER_STORAGE_SHARED_MEMORY_FUTEX_H_
