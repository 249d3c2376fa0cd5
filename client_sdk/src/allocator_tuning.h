// Opt-in process-wide malloc settings for bulk transfers (see
// ClientOptions::tune_allocator).
#ifndef TENSORPAGER_CLIENT_SDK_SRC_ALLOCATOR_TUNING_H_
#define TENSORPAGER_CLIENT_SDK_SRC_ALLOCATOR_TUNING_H_

namespace tensorpager::internal {

// Keeps allocations up to 32 MiB on the heap and freed memory up to
// 512 MiB in it. Idempotent.
void TuneProcessAllocator();

}  // namespace tensorpager::internal

#endif  // TENSORPAGER_CLIENT_SDK_SRC_ALLOCATOR_TUNING_H_
