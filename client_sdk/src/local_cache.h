// The SDK's local cache: copies of blocks in host memory and on each GPU,
// each pool under a byte budget with its own eviction policy (the server's
// code, storage/policy), handles that keep copies in place, write-back of
// dirty blocks before their last copy goes, shrinking under memory
// pressure, and the access counts the server gets in batches.
//
// Copies of one block on several placements always hold the same bytes:
// taking a block for writing drops its copies elsewhere. "Dirty" is a
// property of the block: the server's bytes are older than the local ones.
#ifndef TENSORPAGER_CLIENT_SDK_SRC_LOCAL_CACHE_H_
#define TENSORPAGER_CLIENT_SDK_SRC_LOCAL_CACHE_H_

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client_sdk/src/buffer_pool.h"
#include "client_sdk/src/cache_backend.h"
#include "client_sdk/src/stream_pool.h"
#include "storage/base/block_key.h"
#include "storage/base/log.h"
#include "storage/policy/eviction_policy.h"
#include "tensorpager/block_handle.h"
#include "tensorpager/block_name.h"
#include "tensorpager/cache_stats.h"
#include "tensorpager/client_options.h"
#include "tensorpager/device_runtime.h"

namespace tensorpager::internal {

enum class CopyState : uint8_t { kLoading, kReady, kEvicting };

struct CachedBlock;

// One block's bytes in one pool.
struct CachedCopy {
  CachedBlock* block = nullptr;
  int pool = 0;
  CopyState state = CopyState::kLoading;
  uint32_t handles = 0;  // BlockHandles and internal readers
  RawBuffer buffer;      // .bytes is reserved even before .ptr is set
};

struct CachedBlock {
  CachedBlock(storage::BlockKeyView id, policy::Handle key, int pools)
      : id(id), key(key), copies(pools) {}

  storage::BlockKey id;
  policy::Handle key;  // the same key in every pool's policy
  uint64_t size = 0;
  int priority = 0;
  bool pinned = false;
  bool dirty = false;
  uint32_t write_handles = 0;
  uint64_t version = 0;     // bumps whenever the block is taken for writing
  uint32_t unreported = 0;  // local accesses not yet sent to the server
  int resident = 0;         // non-null entries of `copies`
  int changing = 0;         // copies loading or being written back
  std::vector<std::unique_ptr<CachedCopy>> copies;  // by pool index
};

class LocalCache {
 public:
  LocalCache(const CacheOptions& options, uint32_t report_batch,
             std::shared_ptr<DeviceRuntime> runtime, StreamPool* streams,
             CacheBackend* backend, base::Logger* log);
  LocalCache(const LocalCache&) = delete;
  LocalCache& operator=(const LocalCache&) = delete;
  // Frees every copy without writing back: call FlushAll first.
  ~LocalCache();

  absl::StatusOr<BlockHandle> Acquire(const BlockName& name, Placement where,
                                      AccessMode mode);
  // Brings a copy in without a handle and without counting an access.
  absl::Status Load(const BlockName& name, Placement where);
  // For BlockHandle.
  void Release(CachedCopy* copy, AccessMode mode);
  absl::Status MarkDirty(CachedCopy* copy);

  // Writes back every dirty block; FAILED_PRECONDITION (after writing the
  // others) when some are held by write handles.
  absl::Status FlushAll();
  absl::Status Flush(storage::BlockKeyView id);
  // Drops the block's copy on `where` (every copy when unset), writing a
  // dirty block back first when its last copy goes.
  absl::Status Evict(storage::BlockKeyView id, std::optional<Placement> where);
  // Forgets the block's copies without writing back (the server's bytes
  // changed, or the block is gone).
  absl::Status Invalidate(storage::BlockKeyView id);
  // Invalidate for every block of namespace `ns` whose id starts with
  // `prefix`: all or, when a handle holds one of them, none.
  absl::Status InvalidatePrefix(absl::string_view ns, absl::string_view prefix);
  // Whether the block is dirty here (false when not cached).
  bool IsDirty(storage::BlockKeyView id);
  // Mirrors the server's pinned flag on the cached copies.
  void SetPinned(storage::BlockKeyView id, bool pinned);
  // Reacts to a pressure level on "host_ram" or "gpuN"; other resources
  // are ignored.
  void ApplyPressure(absl::string_view resource, v1::PressureLevel level);

  // Waits until a batch of accesses is pending, `max_wait` passes or
  // StopWaiting is called, then moves the pending counts to `out`.
  void TakeReports(absl::Duration max_wait, std::vector<v1::AccessReport>* out);
  void StopWaiting();
  void CountReported(uint64_t accesses);

  CacheStats Stats() const;
  // Bytes held (copies and spares) on a placement.
  uint64_t HeldBytes(Placement where) const;
  int device_count() const { return static_cast<int>(pools_.size()) - 1; }

 private:
  // Private members below take the lock as `lock` when they may release it
  // (to move bytes, allocate or wait); the others need mu_ held.
  using Lock = std::unique_lock<std::mutex>;

  struct Pool {
    Placement placement = Placement::Host();
    std::unique_ptr<policy::EvictionPolicy> policy;
    std::unique_ptr<BufferPool> buffers;
    uint64_t budget = 0;
    uint64_t effective_budget = 0;
    uint64_t used = 0;      // bytes reserved by copies
    uint64_t evicting = 0;  // of which: copies being written back
    uint64_t blocks = 0;
    v1::PressureLevel level = v1::LOW;
  };

  static Placement PlacementOf(int pool);
  absl::StatusOr<int> PoolIndex(Placement where) const;
  CachedBlock* Find(storage::BlockKeyView id);
  CachedBlock* FindKey(policy::Handle key);
  // The block once none of its copies is loading or being written back
  // (waits for that), or null when it is not cached.
  CachedBlock* FindSettled(Lock& lock, storage::BlockKeyView id);
  // The copy to read the block from: the host's when there is one, else
  // any; null when the block has none.
  static CachedCopy* SourceCopy(CachedBlock* b);

  // The core of Acquire and Load; on success the copy carries one more
  // handle.
  absl::StatusOr<CachedCopy*> AcquireCopy(Lock& lock, storage::BlockKeyView id,
                                          int pool, AccessMode mode, bool count,
                                          bool* local);
  absl::StatusOr<CachedCopy*> CopyFromLocal(Lock& lock, CachedBlock* b,
                                            CachedCopy* src, int pool);
  absl::StatusOr<CachedCopy*> LoadFromServer(Lock& lock,
                                             storage::BlockKeyView id, int pool,
                                             AccessMode mode);
  // Drops the block's other copies so `pool` holds the only one.
  absl::Status MakeExclusive(CachedBlock* b, int pool);
  void TakeForWriting(CachedBlock* b);
  void NoteAccess(CachedBlock* b);

  CachedCopy* NewCopy(CachedBlock* b, int pool);
  // Reserves room for `size` bytes in the copy's pool (evicting) and gives
  // the copy memory. May release the lock to write back or allocate.
  absl::Status ReserveAndAllocate(Lock& lock, CachedCopy* c, uint64_t size);
  // Evicts from `pool` until `need` more bytes fit its effective budget.
  absl::Status MakeRoom(Lock& lock, int pool, uint64_t need, bool pressure);
  // Writes dirty copies (in kEvicting) back, then drops them; a copy whose
  // write-back fails stays, ready again.
  absl::Status WriteBackAndDrop(Lock& lock,
                                const std::vector<CachedCopy*>& copies);
  void FinishLoad(CachedCopy* c);
  // Gives up a copy that never became ready.
  void AbandonCopy(CachedCopy* c);
  // Drops a ready copy, or one whose write-back just finished.
  void DropCopy(CachedCopy* c);
  // What AbandonCopy and DropCopy share: frees the copy's memory and erases
  // the block with its last copy.
  void RemoveCopy(CachedCopy* c);
  // Frees spares beyond what the pool's effective budget leaves room for.
  void TrimSpares(Lock& lock, int pool);
  absl::Status FlushKey(Lock& lock, policy::Handle key);
  // Copies `size` bytes between two local copies (host <-> device).
  absl::Status CopyBytes(const CachedCopy& dst, const CachedCopy& src,
                         uint64_t size);
  absl::Status ZeroFill(const CachedCopy& c, uint64_t size);
  int PriorityOf(v1::RegionType type) const;
  std::string Describe(int pool) const;
  // FAILED_PRECONDITION naming the copy's handles; `then` says what
  // releasing them allows.
  absl::Status InUseError(const CachedCopy& c, absl::string_view then) const;

  const CacheOptions options_;
  const uint32_t report_batch_;
  const std::shared_ptr<DeviceRuntime> runtime_;
  StreamPool* const streams_;
  CacheBackend* const backend_;
  base::Logger* const log_;

  // std::mutex, not absl::Mutex: Debian's prebuilt Abseil is not built for
  // ThreadSanitizer, which then cannot see absl::Mutex hand-offs. mu_
  // guards everything below.
  mutable std::mutex mu_;
  // A copy finished loading or being written back, or was dropped.
  std::condition_variable changed_;
  // A batch of access reports is pending, or StopWaiting was called.
  std::condition_variable reports_ready_;
  std::vector<Pool> pools_;  // [0] host, [1 + d] GPU d
  absl::flat_hash_map<storage::BlockKey, std::unique_ptr<CachedBlock>,
                      storage::BlockKeyHash, storage::BlockKeyEq>
      blocks_;
  absl::flat_hash_map<policy::Handle, CachedBlock*> by_key_;
  policy::Handle next_key_ = 1;
  std::vector<policy::Handle> victims_;

  // Access reporting.
  std::vector<policy::Handle> report_queue_;
  std::vector<v1::AccessReport> orphan_reports_;
  uint64_t pending_reports_ = 0;
  bool stop_waiting_ = false;

  CacheStats stats_;
};

}  // namespace tensorpager::internal

#endif  // TENSORPAGER_CLIENT_SDK_SRC_LOCAL_CACHE_H_
