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
  // WriteBlock: ~33 -> ~6 ms of server CPU in the SDK bench). Fixed
  // thresholds also turn off glibc's dynamic adjustment.
  mallopt(M_ARENA_MAX, 1);
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
}

void ReturnFreeHeapPages(size_t keep_bytes) { malloc_trim(keep_bytes); }

}  // namespace tensorpager::base
