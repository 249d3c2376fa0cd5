#include "client_sdk/src/allocator_tuning.h"

#include <malloc.h>

namespace tensorpager::internal {

void TuneProcessAllocator() {
  // Fixed thresholds also turn off glibc's dynamic adjustment, which would
  // otherwise keep flipping multi-MiB buffers between mmap and the heap.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  // gRPC receives on whichever thread polls and the buffers are freed on
  // the reader's: with one arena per thread, memory freed into an idle
  // thread's heap is trimmed there and faulted in afresh by the next
  // receive. One arena keeps it in circulation (small allocations stay
  // lock-free in glibc's per-thread caches).
  mallopt(M_ARENA_MAX, 1);
}

}  // namespace tensorpager::internal
