// The local-cache layer of tensorpager::Client.
#include "absl/strings/str_cat.h"
#include "client_sdk/src/block_name_key.h"
#include "client_sdk/src/block_transport.h"
#include "client_sdk/src/local_cache.h"
#include "client_sdk/src/work_queue.h"
#include "tensorpager/client.h"

namespace tensorpager {

absl::StatusOr<BlockHandle> Client::Access(const BlockName& name,
                                           Placement where, AccessMode mode) {
  return cache_->Acquire(name, where, mode);
}

std::future<absl::Status> Client::Prefetch(const BlockName& name,
                                           Placement where) {
  return prefetch_->Submit(
      [this, name, where] { return cache_->Load(name, where); });
}

absl::Status Client::Flush() { return cache_->FlushAll(); }

absl::Status Client::Flush(const BlockName& name) {
  return cache_->Flush(internal::LocalKey(name));
}

absl::Status Client::Evict(const BlockName& name,
                           std::optional<Placement> where) {
  return cache_->Evict(internal::LocalKey(name), where);
}

CacheStats Client::LocalStats() const {
  CacheStats stats = cache_->Stats();
  stats.shared_memory_transfers = transport_->shared_transfers();
  stats.shared_memory_bytes = transport_->shared_bytes();
  stats.shared_memory_ring_transfers = transport_->ring_transfers();
  return stats;
}

bool Client::host_mode() const { return runtime_->device_count() == 0; }

}  // namespace tensorpager
