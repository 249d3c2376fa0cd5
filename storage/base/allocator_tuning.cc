#include "storage/base/allocator_tuning.h"

#include <malloc.h>

namespace tensorpager::base {

void TuneProcessAllocator() {
  // Block data moves in short-lived buffers of KiB to MiB (gRPC messages,
  // write staging, the codecs' scratch space). glibc's defaults map the
  // large ones fresh and give them back, and trim each thread arena's heap
  // with MADV_DONTNEED, so the next buffer faults its memory in page by
  // page — on VMs with shadow paging a trap per 4 KiB page. One arena that
  // is neither unmapped nor trimmed keeps the memory in circulation (4 MiB
  // WriteBlock: ~33 -> ~6 ms of server CPU in the SDK bench). In a client,
  // gRPC receives on whichever thread polls and the buffers are freed on
  // the reader's: with one arena per thread, memory freed into an idle
  // thread's heap is trimmed there and faulted in afresh by the next
  // receive. Small allocations stay lock-free in glibc's per-thread caches.
  // Fixed thresholds also turn off glibc's dynamic adjustment, which would
  // otherwise keep flipping multi-MiB buffers between mmap and the heap.
  mallopt(M_ARENA_MAX, 1);
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
}

void ReturnFreeHeapPages(size_t keep_bytes) { malloc_trim(keep_bytes); }

}  // namespace tensorpager::base
