// The block store: the engine behind tensorpagerd. It owns every block's
// bytes (RAM tier, NVMe tier or both), its metadata (RocksDB) and the
// eviction policy, and moves blocks between the tiers.
//
// Concurrency: one mutex guards the index, the policy and the RAM
// accounting; I/O runs outside it. A block with I/O in flight carries an
// io state that other operations wait on, so nobody sees half-moved state:
// during a swap-out the RAM copy stays readable until the disk copy is
// durable, and a write waits for the swap to finish.
#ifndef TENSORPAGER_STORAGE_BLOCK_STORE_H_
#define TENSORPAGER_STORAGE_BLOCK_STORE_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "storage/base/aligned_buffer.h"
#include "storage/base/block_key.h"
#include "storage/base/shared_mutex.h"
#include "storage/base/task_pool.h"
#include "storage/block_types.h"
#include "storage/buffer_pool.h"
#include "storage/codec.h"
#include "storage/disk_tier.h"
#include "storage/entry_arena.h"
#include "storage/io_engine.h"
#include "storage/metadata_store.h"
#include "storage/policy/eviction_policy.h"
#include "storage/recent_on_disk.h"

namespace tensorpager::storage {

enum class AccessResult { kRamHit, kDiskHit, kMiss, kLost };

// Receives the store's events, e.g. to feed metrics. Called outside the
// store's lock; must be thread-safe and cheap.
class StoreObserver {
 public:
  virtual ~StoreObserver() = default;
  virtual void OnSwapOut(uint64_t bytes, absl::Duration duration) = 0;
  virtual void OnSwapIn(uint64_t bytes, absl::Duration duration) = 0;
  virtual void OnAccess(AccessResult result) = 0;
};

struct BlockStoreOptions {
  std::string data_dir;
  uint64_t ram_budget_bytes = 1ull << 30;
  uint64_t max_swap_bytes = 2ull << 30;
  uint64_t max_block_bytes = 1ull << 30;
  // Registered blocks at most (each costs metadata memory).
  uint64_t max_blocks = 10'000'000;
  // The data file grows in steps of this size (preallocated).
  uint64_t file_growth_bytes = 64ull << 20;
  IoEngineOptions io;  // io.path is set by the store
  // Opens the NVMe tier's engine over `io`. Unset: OpenIoEngine (io_uring
  // or threads on the real file). Tests hand in engines that keep the bytes
  // in memory or fail on demand.
  std::function<absl::StatusOr<std::unique_ptr<IoEngine>>(
      const IoEngineOptions&)>
      open_io_engine;
  policy::Algorithm algorithm = policy::Algorithm::kLru;
  // WriteBlock without an explicit durable flag: per region type override,
  // else the default.
  bool durable_writes = false;
  std::array<std::optional<bool>, kNumRegionTypes> durable_by_region;
  // Compression of swapped-out bytes: the codec comes from the block's own
  // request, else its region type's override, else compression.codec.
  CompressionSettings compression;
  std::array<std::optional<Codec>, kNumRegionTypes> codec_by_region;
  // Blocks one eviction (or one SwapIn call) moves at the same time, each
  // compressed and written by its own thread.
  uint32_t max_concurrent_swaps = 4;
  // A write or swap-in that must make room frees at least this many bytes
  // (at most a sixteenth of the budget), so small blocks share one
  // fdatasync and one synced RocksDB batch instead of paying both per block.
  uint64_t eviction_batch_bytes = 16ull << 20;
  // Eviction priority per region type (higher stays in RAM longer).
  std::array<int, kNumRegionTypes> region_priority = {0, 1, 1, 1, 3, 1, 0};
  // Accessing member i of a sequence swaps in members i+1 .. i+depth that
  // are only on disk, ahead of use, when the RAM tier has room (0: off).
  uint32_t prefetch_depth = 2;
  // SwapInBytes keeps track of this many of the most recently used blocks
  // on disk only (storage/recent_on_disk.h, about 120 bytes each), so that
  // it finds them without a pass over every block.
  size_t recent_on_disk_blocks = 65536;
  // Set: the NVMe tier's copies are encrypted (storage/encryption.h).
  std::shared_ptr<const KeyRing> encryption_keys;
  StoreObserver* observer = nullptr;  // not owned, may be null
};

struct WriteOptions {
  std::optional<bool> durable;  // unset: the store's default
};

struct WriteResult {
  BlockInfo block;
  uint64_t bytes_written = 0;
  bool durable = false;
};

struct ReadOptions {
  uint64_t offset = 0;
  uint64_t length = 0;  // 0: to the end
  bool touch_only = false;
  // The caller swapped the block in for this read, with others in one
  // batch (BlockStore::SwapIn): it counts as a disk hit, not a RAM hit.
  bool swapped_in_for_read = false;
};

struct ReadResult {
  BlockInfo block;
  bool hit = false;
  // The block's bytes (immutable snapshot; null for touch-only). The range
  // asked for is [offset, offset + length).
  std::shared_ptr<const base::AlignedBuffer> data;
  uint64_t offset = 0;
  uint64_t length = 0;
};

struct SwapResult {
  std::vector<BlockKey> moved;
  std::vector<BlockKey> already_there;
  uint64_t bytes_moved = 0;
  absl::Duration duration;
};

struct ListFilter {
  std::string ns;  // empty: default namespace
  bool all_namespaces = false;
  std::optional<Tier> tier;
  std::optional<RegionType> region_type;
  std::optional<bool> pinned;
  std::string id_prefix;
};

struct ListPage {
  std::vector<BlockInfo> blocks;
  std::string next_page_token;
};

// What one namespace holds (tenants are made of namespaces).
struct NamespaceUsage {
  uint64_t blocks = 0;
  uint64_t bytes = 0;           // every block's size, wherever it is
  uint64_t blocks_in_ram = 0;   // RAM or RAM_AND_DISK
  uint64_t blocks_on_disk = 0;  // DISK or RAM_AND_DISK
  uint64_t ram_bytes = 0;
  uint64_t disk_bytes = 0;
};

// A namespace's share group (SetShareGroups) and what its blocks may hold.
struct ShareGroup {
  std::string name;                    // "" for none
  std::optional<uint64_t> ram_bytes;   // most bytes in the RAM tier
  std::optional<uint64_t> disk_bytes;  // most bytes on the NVMe tier
  // With encryption keys: whether its copies on the NVMe tier are sealed.
  bool encrypted = true;
};

struct StoreStats {
  uint64_t blocks_registered = 0;
  uint64_t blocks_in_ram = 0;   // RAM or RAM_AND_DISK
  uint64_t blocks_on_disk = 0;  // DISK or RAM_AND_DISK
  uint64_t blocks_pinned = 0;
  uint64_t blocks_lost = 0;
  uint64_t blocks_empty = 0;
  uint64_t ram_bytes = 0;
  uint64_t ram_budget_bytes = 0;
  uint64_t disk_bytes = 0;         // logical bytes of blocks with a disk copy
  uint64_t disk_stored_bytes = 0;  // their bytes as stored (compressed)
  uint64_t blocks_compressed = 0;  // disk copies stored compressed
  // Logical / stored bytes of the disk tier; 0 while it is empty.
  double compression_ratio() const {
    return disk_stored_bytes == 0 ? 0.0
                                  : static_cast<double>(disk_bytes) /
                                        static_cast<double>(disk_stored_bytes);
  }
  uint64_t pinned_bytes = 0;
  std::array<uint64_t, kNumRegionTypes> blocks_by_region{};
  std::array<uint64_t, kNumRegionTypes> bytes_by_region{};
  AllocatorStats disk;
  uint64_t ram_hits = 0;
  uint64_t disk_hits = 0;
  uint64_t misses = 0;
  uint64_t swap_outs = 0;
  uint64_t swap_ins = 0;
  // SwapInBytes calls that passed over every block to find the most
  // recently used ones on disk (the rest took them from RecentOnDisk).
  uint64_t swap_in_scans = 0;
  uint64_t bytes_swapped_out = 0;
  uint64_t bytes_swapped_in = 0;
  uint64_t prefetched = 0;
  uint64_t prefetch_hits = 0;
  uint64_t prefetch_wasted = 0;
  uint64_t accesses_reported = 0;
  // Disk copies written with a codec asked for, and those of them stored
  // raw because the ratio was poor.
  uint64_t compress_attempts = 0;
  uint64_t compress_skipped = 0;
  absl::Duration swap_out_time;
  absl::Duration swap_in_time;
  policy::Algorithm algorithm = policy::Algorithm::kLru;
  std::string io_engine;
  // Engine calls (block reads and writes) in flight now.
  int io_in_flight = 0;
  BufferPoolStats buffers;
};

struct RecoveryReport {
  uint64_t blocks = 0;
  uint64_t blocks_on_disk = 0;
  uint64_t bytes_on_disk = 0;
  uint64_t blocks_lost = 0;
  absl::Duration duration;
};

class BlockStore {
 public:
  // Opens or creates the store in options.data_dir and recovers every
  // block recorded there.
  static absl::StatusOr<std::unique_ptr<BlockStore>> Open(
      BlockStoreOptions options);
  ~BlockStore();
  BlockStore(const BlockStore&) = delete;
  BlockStore& operator=(const BlockStore&) = delete;

  absl::StatusOr<BlockInfo> Register(const BlockKey& key,
                                     BlockAttributes attrs);
  // Writes `data` at `offset`. The first write of a block (and of a lost
  // one) must cover it whole. On error the previous contents stay intact.
  absl::StatusOr<WriteResult> Write(const BlockKey& key, uint64_t offset,
                                    base::AlignedBuffer data,
                                    const WriteOptions& options);
  // Returns the bytes, swapping the block in when it is only on disk.
  absl::StatusOr<ReadResult> Read(const BlockKey& key,
                                  const ReadOptions& options);
  absl::StatusOr<BlockInfo> Get(const BlockKey& key) const;
  absl::StatusOr<SwapResult> SwapOut(const std::vector<BlockKey>& keys);
  absl::StatusOr<SwapResult> SwapIn(const std::vector<BlockKey>& keys);
  // Lets the policy pick unpinned victims worth at least `bytes`.
  absl::StatusOr<SwapResult> SwapOutBytes(uint64_t bytes);
  // Swaps in the most recently used disk-only blocks worth `bytes`, as far
  // as the RAM budget allows without evicting anything. They come from the
  // bounded set of the newest such blocks the store keeps (RecentOnDisk);
  // only a request reaching below what that set vouches for passes over
  // every block, letting go of the lock every kListScanPerLock blocks.
  absl::StatusOr<SwapResult> SwapInBytes(uint64_t bytes);
  absl::StatusOr<BlockInfo> SetPinned(const BlockKey& key, bool pinned);
  struct Freed {
    uint64_t ram_bytes = 0;
    uint64_t disk_bytes = 0;
  };
  absl::StatusOr<Freed> Unregister(const BlockKey& key);
  // Unregisters each block, with one metadata commit (and at most one
  // sync) for all: clearing a prefix of thousands of blocks costs one
  // sync, not thousands. A key listed twice is NOT_FOUND the second time.
  std::vector<absl::StatusOr<Freed>> UnregisterMany(
      absl::Span<const BlockKey> keys);
  absl::StatusOr<ListPage> List(const ListFilter& filter, uint32_t page_size,
                                const std::string& page_token) const;
  // Where each block is, under one lock: for batch lookups, which ask
  // about many blocks at once and must not copy each one's attributes.
  // nullopt for a block that is not registered.
  struct Presence {
    Tier tier = Tier::kEmpty;
    uint64_t size_bytes = 0;
  };
  std::vector<std::optional<Presence>> Lookup(
      absl::Span<const BlockKeyView> keys) const;

  // Accesses a client served from its own cache: they count for the
  // policy and the block's statistics, without moving data.
  struct AccessReport {
    BlockKey key;
    uint32_t count = 1;
  };
  struct ReportResult {
    uint32_t accepted = 0;
    uint32_t unknown = 0;
  };
  ReportResult ReportAccesses(const std::vector<AccessReport>& reports);

  // Swaps out until RAM use is at most `target_bytes`, to make headroom
  // ahead of need (the policy thread): with share groups, only from those
  // above their fair share.
  absl::StatusOr<SwapResult> ShrinkRamTo(uint64_t target_bytes);
  void SetRamBudget(uint64_t bytes);
  uint64_t ram_budget() const;
  // Calls `wake` whenever a reservation leaves the RAM tier above
  // `fraction` of its budget, so a background swapper (the server's policy
  // thread) makes room ahead of the writers instead of on its next tick
  // and writers seldom evict on their own path. `wake` runs under the
  // store's lock: it must only signal.
  void SetRamHighWater(double fraction, std::function<void()> wake);
  // Switches the eviction algorithm; resident blocks are re-inserted in
  // recency order so the new policy starts with their history.
  void SetAlgorithm(policy::Algorithm algorithm);

  StoreStats Stats() const;
  // Groups namespaces into share groups (the server's tenants; `group_of`
  // names a namespace's group, "" for none, and its limits). Eviction then
  // takes first from groups holding more than an equal share of the RAM
  // budget, so one group cannot push every other group's blocks to disk;
  // a group at its RAM limit makes room from its own blocks; a group at
  // its disk limit keeps its blocks in RAM (and durable writes and Swap
  // out of them are RESOURCE_EXHAUSTED). Unset: plain policy order.
  void SetShareGroups(std::function<ShareGroup(absl::string_view ns)> group_of);
  // Every namespace that holds blocks, with its usage (kept as blocks
  // change, like Stats).
  absl::flat_hash_map<std::string, NamespaceUsage> UsageByNamespace() const;
  // The sum over the namespaces `include` picks.
  NamespaceUsage SumUsage(
      const std::function<bool(absl::string_view ns)>& include) const;
  // A buffer for a block's bytes, recycled from blocks that left RAM when
  // one of the same size is free (see BufferPool).
  base::AlignedBuffer NewBuffer(uint64_t size) { return buffers_->Take(size); }
  const RecoveryReport& recovery() const { return recovery_; }
  const BlockStoreOptions& options() const { return options_; }

 private:
  enum class Io : uint8_t {
    kIdle,
    kWriting,
    kSwappingOut,
    kSwappingIn,
    kRemoving
  };
  struct Entry;
  // Entries own their name in the same allocation (NewEntry).
  struct EntryDeleter {
    void operator()(Entry* e) const;
  };
  using EntryPtr = std::unique_ptr<Entry, EntryDeleter>;
  EntryPtr NewEntry(BlockKeyView key);

  explicit BlockStore(BlockStoreOptions options);
  absl::Status Recover();
  // An index entry as a metadata record describes it; `scratch` is reused
  // across calls (block_store_recovery.cc).
  EntryPtr EntryFromRecord(BlockKeyView key, const BlockRecordProto& r,
                           BlockRecordProto& scratch);

  Entry* Find(const BlockKey& key) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Finds a live block (NOT_FOUND otherwise) and waits until no I/O is in
  // flight on it.
  absl::StatusOr<Entry*> FindIdle(const BlockKey& key)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Finds every block (NOT_FOUND for the first missing one) and waits until
  // all are idle at once. Never keeps an entry across a wait.
  absl::StatusOr<std::vector<Entry*>> FindAllIdle(
      absl::Span<const BlockKey> keys) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Calls visit(entry) in key order from the first entry at `from` (past
  // it when `past`) until visit returns false or the entries end. The read
  // lock is held for kListScanPerLock entries at a time, so a pass over
  // millions of blocks never stalls writers for long; visit runs with it
  // held and must not keep an entry across calls.
  void ScanEntries(absl::string_view from, bool past,
                   absl::FunctionRef<bool(const Entry&)> visit) const
      ABSL_LOCKS_EXCLUDED(mu_);
  Tier TierOf(const Entry& e) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  BlockInfo InfoOf(const Entry& e) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  BlockRecordProto RecordOf(const Entry& e) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  bool DurableByDefault(RegionType type) const;
  int PriorityOf(RegionType type) const;
  void Touch(Entry& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Reserves RAM-tier bytes for `block`, evicting unpinned blocks as
  // needed (never `block` itself), within its share group's RAM limit.
  absl::Status ReserveRam(uint64_t bytes, const Entry* block)
      ABSL_LOCKS_EXCLUDED(mu_);
  void ReleaseReservation(uint64_t bytes) ABSL_LOCKS_EXCLUDED(mu_);

  // Writes the bytes of entries (all marked kSwappingOut by the caller) to
  // the data file with one sync and one metadata commit, then drops their
  // RAM copies. Entries that fail are left in RAM. Returns the first error.
  absl::Status SwapOutMarked(const std::vector<Entry*>& entries,
                             SwapResult* result) ABSL_LOCKS_EXCLUDED(mu_);
  // Swaps in one entry marked kSwappingIn by the caller.
  absl::Status SwapInMarked(Entry* e) ABSL_LOCKS_EXCLUDED(mu_);
  // Swaps in entries marked kSwappingIn by the caller, their reads in one
  // engine batch; returns each one's outcome. With `prefetch`, the blocks
  // brought in count as prefetched (until their first access).
  std::vector<absl::Status> SwapInMarked(absl::Span<Entry* const> entries,
                                         bool prefetch = false)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The compression settings for `e`'s next disk copy.
  // Whether the NVMe copy of `e` is sealed (with encryption keys): its
  // share group says.
  bool SealFor(const Entry& e) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  CompressionSettings CompressionFor(const Entry& e) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Queues the sequence successors of `e` that are only on disk.
  void SchedulePrefetch(const Entry& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PrefetchLoop();
  void IndexSequence(Entry* e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UnindexSequence(const Entry& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Bookkeeping when a block leaves RAM or the store.
  void NoteLeavingRam(Entry& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Lets the buffer pool keep what the RAM tier's budget has room for.
  // Call after every change of ram_used_ or ram_budget_, before dropping a
  // buffer.
  void UpdatePoolLimit() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  BlockStoreOptions options_;
  std::unique_ptr<MetadataStore> meta_;
  RecoveryReport recovery_;
  std::unique_ptr<base::TaskPool> swap_pool_;
  std::shared_ptr<BufferPool> buffers_ = BufferPool::Create();
  std::unique_ptr<DiskTier> disk_;  // after the pools it borrows

  mutable SharedMutex mu_;
  CondVar io_done_;  // signalled whenever an entry's io state changes
  // The entries' memory (NewEntry); declared before every holder of an
  // entry, so it outlives them all.
  EntryArena entry_arena_;
  // The entries in the order of their encoded keys, so listings page in
  // key order; owns them. Also searched by compact name (transparent;
  // storage/compact_name.h orders compact names as their keys).
  struct EntryOrder {
    using is_transparent = void;
    bool operator()(const EntryPtr& a, const EntryPtr& b) const;
    bool operator()(const EntryPtr& a, absl::string_view b) const;
    bool operator()(absl::string_view a, const EntryPtr& b) const;
  };
  absl::btree_set<EntryPtr, EntryOrder> blocks_ ABSL_GUARDED_BY(mu_);
  // The same entries hashed by compact name, for point lookups: a search of
  // the ordered index at millions of blocks follows a key pointer, a
  // cache miss, at every comparison; this one touches about three lines.
  struct EntryKeyHash {
    using is_transparent = void;
    size_t operator()(absl::string_view compact) const;
    size_t operator()(const Entry* e) const;
  };
  struct EntryKeyEq {
    using is_transparent = void;
    bool operator()(const Entry* a, const Entry* b) const { return a == b; }
    bool operator()(const Entry* a, absl::string_view b) const;
    bool operator()(absl::string_view a, const Entry* b) const {
      return (*this)(b, a);
    }
  };
  absl::flat_hash_set<Entry*, EntryKeyHash, EntryKeyEq> by_key_
      ABSL_GUARDED_BY(mu_);
  // Puts `e` in both indexes.
  void Index(EntryPtr e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The entry of a compact name (storage/compact_name.h), removing ones
  // included; nullptr when none.
  Entry* FindCompact(absl::string_view compact) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  std::unique_ptr<policy::EvictionPolicy> policy_ ABSL_GUARDED_BY(mu_);
  std::vector<policy::Handle> victims_ ABSL_GUARDED_BY(mu_);
  // The most recently used blocks on disk only, for SwapInBytes; told of
  // every block that goes there (NoteIfOnDiskOnly).
  RecentOnDisk recent_on_disk_ ABSL_GUARDED_BY(mu_);
  // One SwapInBytes at a time passes over every block to rebuild it.
  SharedMutex swap_in_scan_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  void NoteIfOnDiskOnly(const Entry& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Bytes the RAM tier can take without evicting anything.
  uint64_t RamRoom() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Up to `bytes` of the most recently used idle blocks on disk only that
  // fit in the RAM tier's room, from recent_on_disk_; false when it could
  // not vouch for them (`keys` then holds those it found).
  bool PickRecentOnDisk(uint64_t bytes, std::vector<BlockKey>* keys)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Rebuilds recent_on_disk_ from a pass over every block, keeping at
  // least `bytes` of blocks that PickRecentOnDisk could take.
  void RescanOnDisk(uint64_t bytes) ABSL_LOCKS_EXCLUDED(mu_)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(swap_in_scan_mu_);
  std::function<ShareGroup(absl::string_view ns)> group_of_
      ABSL_GUARDED_BY(mu_);
  // Fills victims_ for `bytes`: first among blocks of share groups above
  // their fair share (SetShareGroups), then among all `eligible` blocks;
  // never a block whose swap-out would take its group past its disk limit.
  // `ahead_of_need` (swap-outs that only make headroom): with several
  // groups holding RAM, only from those above their share.
  void SelectVictimsFairly(uint64_t bytes,
                           absl::FunctionRef<bool(const Entry&)> eligible,
                           bool ahead_of_need = false)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<SwapResult> SwapOutVictims(uint64_t bytes, bool ahead_of_need)
      ABSL_LOCKS_EXCLUDED(mu_);
  class GroupLookup;  // block_store_share_groups.cc
  // What the share group of `ns` holds per tier, with its limits.
  struct GroupUse {
    ShareGroup group;
    uint64_t ram_bytes = 0;
    uint64_t disk_bytes = 0;
  };
  GroupUse UseOfGroup(absl::string_view ns) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // When `bytes` more in RAM would take the group of `e` past its RAM
  // limit, marks (kSwappingOut) enough of the group's own blocks to stay
  // within it. RESOURCE_EXHAUSTED when there are none to mark (pinned,
  // busy, or kept in RAM by the group's disk limit).
  absl::Status MarkGroupVictims(const Entry& e, uint64_t bytes,
                                std::vector<Entry*>* marked)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // RESOURCE_EXHAUSTED when new disk copies of `entries` (those without
  // one) would take a share group past its disk limit.
  absl::Status DiskLimitAllows(absl::Span<const Entry* const> entries) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  uint64_t ram_budget_ ABSL_GUARDED_BY(mu_);
  double high_water_ ABSL_GUARDED_BY(mu_) = 1.0;
  std::function<void()> high_water_wake_ ABSL_GUARDED_BY(mu_);
  uint64_t ram_used_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t ram_reserved_ ABSL_GUARDED_BY(mu_) = 0;
  int swaps_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  // Sequence group -> index -> member, for prefetching successors.
  absl::flat_hash_map<std::string, absl::btree_map<uint32_t, Entry*>> sequences_
      ABSL_GUARDED_BY(mu_);
  std::deque<BlockKey> prefetch_queue_ ABSL_GUARDED_BY(mu_);
  // The prefetcher's own wake-up (queue not empty, or stopping): on
  // io_done_ it woke at every write and read of every block.
  CondVar prefetch_wanted_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread prefetcher_;

  // Adds (sign +1) or takes away (-1) what `e` contributes to tally_.
  // Every change of a field that the tally reads (tier, pinned, removal)
  // sits between a -1 and a +1 (see Recount), so Stats never scans.
  void Count(const Entry& e, int sign) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CountNamespace(const Entry& e, Tier tier, int sign)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  class Recount;
  // Block counts and bytes by tier, region and pinning, kept as blocks
  // change (the StoreStats fields of the same names).
  struct Tally {
    int64_t blocks_registered = 0, blocks_in_ram = 0, blocks_on_disk = 0;
    int64_t blocks_pinned = 0, blocks_lost = 0, blocks_empty = 0;
    int64_t disk_bytes = 0, disk_stored_bytes = 0, blocks_compressed = 0;
    int64_t pinned_bytes = 0;
    std::array<int64_t, kNumRegionTypes> blocks_by_region{};
    std::array<int64_t, kNumRegionTypes> bytes_by_region{};
    absl::flat_hash_map<std::string, NamespaceUsage> by_namespace;
  };
  Tally tally_ ABSL_GUARDED_BY(mu_);

  struct Counters {
    uint64_t ram_hits = 0, disk_hits = 0, misses = 0;
    uint64_t swap_outs = 0, swap_ins = 0;
    uint64_t bytes_out = 0, bytes_in = 0;
    uint64_t prefetched = 0, prefetch_hits = 0, prefetch_wasted = 0;
    uint64_t reported = 0;
    uint64_t swap_in_scans = 0;
    absl::Duration out_time, in_time;
  };
  Counters counters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tensorpager::storage

#endif  // TENSORPAGER_STORAGE_BLOCK_STORE_H_
