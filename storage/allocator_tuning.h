// Process-wide malloc settings for a process that moves block bytes
// (tensorpagerd, and the benchmarks that stand in for it).
#ifndef TENSORPAGER_STORAGE_ALLOCATOR_TUNING_H_
#define TENSORPAGER_STORAGE_ALLOCATOR_TUNING_H_

namespace tensorpager::storage {

// One malloc arena that keeps allocations up to 32 MiB on the heap and
// freed memory up to 512 MiB in it. Call once, first thing in main().
void TuneProcessAllocator();

}  // namespace tensorpager::storage

#endif  // TENSORPAGER_STORAGE_ALLOCATOR_TUNING_H_
