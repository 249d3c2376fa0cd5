// Process-wide malloc settings for a process that moves block bytes
// (tensorpagerd, the benchmarks that stand in for it, and applications
// that opt in through the SDK's ClientOptions::tune_allocator).
#ifndef TENSORPAGER_STORAGE_BASE_ALLOCATOR_TUNING_H_
#define TENSORPAGER_STORAGE_BASE_ALLOCATOR_TUNING_H_

#include <cstddef>

namespace tensorpager::base {

// One malloc arena that keeps allocations up to 32 MiB on the heap and
// freed memory up to 512 MiB in it. Idempotent. Call it early: tensorpagerd
// first thing in main(), the SDK when a Client is made.
void TuneProcessAllocator();

// Gives free pages of the heap back to the kernel, keeping `keep_bytes` at
// its top. The settings above never trim on their own, so without this a
// long-running process's heap only ever grows to its high-water mark
// (fragmentation ratchets it up). Call it seldom (every few seconds at
// most): the pages it returns fault back in when reused.
void ReturnFreeHeapPages(size_t keep_bytes);

}  // namespace tensorpager::base

#endif  // TENSORPAGER_STORAGE_BASE_ALLOCATOR_TUNING_H_
