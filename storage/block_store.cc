#include "storage/block_store.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <system_error>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "storage/base/log.h"
#include "storage/block_store_internal.h"
#include "storage/private_dir.h"

namespace tensorpager::storage {

BlockStore::BlockStore(BlockStoreOptions options)
    : options_(std::move(options)),
      swap_pool_(std::make_unique<base::TaskPool>(static_cast<int>(
          std::max<uint32_t>(options_.max_concurrent_swaps, 1)))),
      recent_on_disk_(options_.recent_on_disk_blocks),
      ram_budget_(options_.ram_budget_bytes) {
  policy_ = policy::MakePolicy(options_.algorithm);
  policy_->SetCapacity(ram_budget_);
  buffers_->SetLimit(ram_budget_);
}

BlockStore::~BlockStore() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    io_done_.SignalAll();
    prefetch_wanted_.SignalAll();
  }
  if (prefetcher_.joinable()) prefetcher_.join();
}

absl::StatusOr<std::unique_ptr<BlockStore>> BlockStore::Open(
    BlockStoreOptions options) {
  if (options.data_dir.empty()) {
    return absl::InvalidArgumentError("data dir is empty");
  }
  std::error_code ec;
  ec = MakePrivateDirectory(options.data_dir);
  if (ec) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot create data dir ", options.data_dir, ": ", ec.message()));
  }
  if (options.max_swap_bytes < base::kIoAlignment) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max swap size must be at least ", base::kIoAlignment, " bytes"));
  }
  std::unique_ptr<BlockStore> store(new BlockStore(std::move(options)));
  absl::StatusOr<std::unique_ptr<MetadataStore>> meta =
      MetadataStore::Open(store->options_.data_dir + "/metadata");
  if (!meta.ok()) return meta.status();
  store->meta_ = *std::move(meta);
  store->options_.io.path = store->options_.data_dir + "/blocks.dat";
  absl::StatusOr<std::unique_ptr<IoEngine>> io =
      store->options_.open_io_engine
          ? store->options_.open_io_engine(store->options_.io)
          : OpenIoEngine(store->options_.io);
  if (!io.ok()) return io.status();
  store->disk_ = std::make_unique<DiskTier>(
      DiskTierOptions{store->options_.max_swap_bytes,
                      store->options_.file_growth_bytes,
                      store->options_.encryption_keys},
      *std::move(io), store->buffers_, store->swap_pool_.get());
  if (absl::Status s = store->Recover(); !s.ok()) return s;
  if (absl::Status s = store->meta_->EnableCompactions(); !s.ok()) return s;
  if (store->options_.prefetch_depth > 0) {
    BlockStore* raw = store.get();
    store->prefetcher_ = std::thread([raw] { raw->PrefetchLoop(); });
  }
  return store;
}

BlockStore::EntryPtr BlockStore::NewEntry(BlockKeyView key) {
  // Every byte here is paid per block, tens of millions of times: a field
  // that grows the entry must show up in the layout of docs/ARCHITECTURE.md
  // ("Per-block memory"), which this keeps true.
  static_assert(sizeof(Entry) == 128);
  // One allocation holds the entry and, behind it, its name: the raw
  // storage is obtained and released only here and in EntryDeleter.
  const size_t name_bytes = compact_name::Size(key);
  void* memory = entry_arena_.Allocate(sizeof(Entry) + name_bytes);
  EntryPtr e(::new (memory) Entry());
  // Set first: the deleter frees by the size it implies.
  e->name_size = name_bytes;
  compact_name::Write(key, name_bytes,
                      static_cast<char*>(memory) + sizeof(Entry));
  return e;
}

void BlockStore::EntryDeleter::operator()(Entry* e) const {
  const size_t bytes = sizeof(Entry) + e->name_size;
  e->~Entry();
  EntryArena::Free(e, bytes);
}

bool BlockStore::EntryOrder::operator()(const EntryPtr& a,
                                        const EntryPtr& b) const {
  return compact_name::Compare(a->compact(), b->compact()) < 0;
}

bool BlockStore::EntryOrder::operator()(const EntryPtr& a,
                                        absl::string_view b) const {
  return compact_name::Compare(a->compact(), b) < 0;
}

bool BlockStore::EntryOrder::operator()(absl::string_view a,
                                        const EntryPtr& b) const {
  return compact_name::Compare(a, b->compact()) < 0;
}

size_t BlockStore::EntryKeyHash::operator()(absl::string_view compact) const {
  return absl::Hash<absl::string_view>()(compact);
}

size_t BlockStore::EntryKeyHash::operator()(const Entry* e) const {
  return (*this)(e->compact());
}

bool BlockStore::EntryKeyEq::operator()(const Entry* a,
                                        absl::string_view b) const {
  return a->compact() == b;
}

void BlockStore::Index(EntryPtr e) {
  by_key_.insert(e.get());
  blocks_.insert(std::move(e));
}

BlockStore::Entry* BlockStore::FindCompact(absl::string_view compact) const {
  auto it = by_key_.find(compact);
  return it == by_key_.end() ? nullptr : *it;
}

BlockStore::Entry* BlockStore::Find(const BlockKey& key) const {
  Entry* e = FindCompact(compact_name::Buffer(key).view());
  if (e == nullptr || e->io == Io::kRemoving) return nullptr;
  return e;
}

absl::StatusOr<std::vector<BlockStore::Entry*>> BlockStore::FindAllIdle(
    absl::Span<const BlockKey> keys) {
  for (;;) {
    // Looked up afresh after every wait: while the lock was released, an
    // entry found before may have been unregistered and freed.
    std::vector<Entry*> entries;
    entries.reserve(keys.size());
    bool busy = false;
    for (const BlockKey& key : keys) {
      Entry* e = Find(key);
      if (e == nullptr) {
        return absl::NotFoundError(absl::StrCat("block ", key.ToString(),
                                                " is not registered; call "
                                                "RegisterBlock"));
      }
      busy = busy || e->io != Io::kIdle;
      entries.push_back(e);
    }
    if (!busy) return entries;
    io_done_.Wait(&mu_);
  }
}

absl::StatusOr<BlockStore::Entry*> BlockStore::FindIdle(const BlockKey& key) {
  for (;;) {
    Entry* e = Find(key);
    if (e == nullptr) {
      return absl::NotFoundError(absl::StrCat(
          "block ", key.ToString(), " is not registered; call RegisterBlock"));
    }
    if (e->io == Io::kIdle) return e;
    io_done_.Wait(&mu_);
  }
}

Tier BlockStore::TierOf(const Entry& e) const {
  if (!e.lost_reason().empty()) return Tier::kLost;
  if (!e.written) return Tier::kEmpty;
  if (e.ram() != nullptr && e.disk.has_value()) return Tier::kRamAndDisk;
  if (e.ram() != nullptr) return Tier::kRam;
  return Tier::kDisk;
}

BlockInfo BlockStore::InfoOf(const Entry& e) const {
  BlockInfo info;
  info.ns = std::string(e.ns());
  info.id = e.id();
  info.attrs = e.attrs.Unpack();
  info.tier = TierOf(e);
  info.stored_bytes = e.disk ? e.disk->stored_bytes() : 0;
  info.checksum = e.checksum;
  info.version = e.version;
  info.access_count = e.access_count;
  info.last_access_unix_ms = e.last_access_ms;
  info.created_unix_ms = e.created_ms;
  info.lost_reason = std::string(e.lost_reason());
  info.codec = e.disk ? e.disk->codec() : "";
  return info;
}

BlockRecordProto BlockStore::RecordOf(const Entry& e) const {
  BlockRecordProto r;
  e.attrs.ToRecord(&r);
  r.set_written(e.written);
  r.set_version(e.version);
  r.set_checksum(e.checksum);
  if (e.disk) e.disk->ToRecord(&r);
  r.set_access_count(e.access_count);
  r.set_last_access_unix_ms(e.last_access_ms);
  r.set_created_unix_ms(e.created_ms);
  r.set_lost_reason(std::string(e.lost_reason()));
  return r;
}

bool BlockStore::DurableByDefault(RegionType type) const {
  const auto& o = options_.durable_by_region[static_cast<int>(type)];
  return o.value_or(options_.durable_writes);
}

int BlockStore::PriorityOf(RegionType type) const {
  return options_.region_priority[static_cast<int>(type)];
}

void BlockStore::Touch(Entry& e) {
  ++e.access_count;
  e.last_access_ms = NowMs();
  policy_->Touch(e.handle());
  NoteIfOnDiskOnly(e);
}

void BlockStore::NoteIfOnDiskOnly(const Entry& e) {
  if (e.OnDiskOnly()) recent_on_disk_.Add(e.last_access_ms, e.compact());
}

absl::StatusOr<BlockInfo> BlockStore::Register(const BlockKey& key,
                                               BlockAttributes attrs) {
  if (attrs.size_bytes == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "block ", key.ToString(), " has size 0; give its size in bytes"));
  }
  if (attrs.size_bytes > options_.max_block_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "block ", key.ToString(), " is ", attrs.size_bytes,
        " bytes; the maximum block size is ", options_.max_block_bytes,
        " bytes (--max_block_size); split the tensor into smaller blocks"));
  }
  if (!attrs.shape.empty()) {
    uint64_t elements = 1;
    for (int64_t d : attrs.shape) {
      if (d < 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "shape of ", key.ToString(), " has a negative dimension"));
      }
      elements *= static_cast<uint64_t>(d);
    }
    const uint64_t elem = ElementBytes(attrs.dtype);
    if (elem != 0 && elements * elem != attrs.size_bytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "shape and dtype of ", key.ToString(), " describe ", elements * elem,
          " bytes but size_bytes is ", attrs.size_bytes));
    }
  }
  MutexLock lock(&mu_);
  if (FindCompact(compact_name::Buffer(key).view()) != nullptr) {
    return absl::AlreadyExistsError(absl::StrCat(
        "block ", key.ToString(),
        " is already registered; unregister it first or use another id"));
  }
  // Every block costs metadata memory whether or not it holds bytes.
  if (blocks_.size() >= options_.max_blocks) {
    return absl::ResourceExhaustedError(absl::StrCat(
        blocks_.size(),
        " blocks are registered, the most this server holds "
        "(--max_blocks); unregister blocks you no longer need or raise "
        "--max_blocks"));
  }
  EntryPtr e = NewEntry(key);
  e->attrs = PackedAttributes::Pack(attrs);
  e->created_ms = NowMs();
  if (absl::Status s = meta_->Put(key, RecordOf(*e), /*sync=*/false); !s.ok()) {
    return s;
  }
  BlockInfo info = InfoOf(*e);
  IndexSequence(e.get());
  Count(*e, +1);
  Index(std::move(e));
  return info;
}

absl::StatusOr<BlockInfo> BlockStore::Get(const BlockKey& key) const {
  ReaderMutexLock lock(&mu_);
  const Entry* e = Find(key);
  if (e == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("block ", key.ToString(), " is not registered"));
  }
  return InfoOf(*e);
}

absl::StatusOr<BlockInfo> BlockStore::SetPinned(const BlockKey& key,
                                                bool pinned) {
  if (pinned) {
    // A pinned block lives in RAM: bring it in first.
    absl::StatusOr<BlockInfo> info = Get(key);
    if (!info.ok()) return info.status();
    if (info->tier == Tier::kLost) {
      return absl::FailedPreconditionError(
          absl::StrCat("block ", key.ToString(), " is lost (",
                       info->lost_reason, "); write it again before pinning"));
    }
    if (info->tier == Tier::kDisk) {
      absl::StatusOr<SwapResult> in = SwapIn({key});
      if (!in.ok()) return in.status();
    }
  }
  MutexLock lock(&mu_);
  absl::StatusOr<Entry*> found = FindIdle(key);
  if (!found.ok()) return found.status();
  Entry* e = *found;
  if (pinned && e->written && e->ram() == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("block ", key.ToString(),
                     " was swapped out while being pinned; retry"));
  }
  if (e->attrs.pinned != pinned) {
    Recount recount(this, *e);
    e->attrs.pinned = pinned;
    if (absl::Status s = meta_->Put(key, RecordOf(*e), /*sync=*/false);
        !s.ok()) {
      e->attrs.pinned = !pinned;
      return s;
    }
    policy_->SetPinned(e->handle(), pinned);
  }
  return InfoOf(*e);
}

absl::StatusOr<BlockStore::Freed> BlockStore::Unregister(const BlockKey& key) {
  return std::move(UnregisterMany({&key, 1})[0]);
}

std::vector<absl::StatusOr<BlockStore::Freed>> BlockStore::UnregisterMany(
    absl::Span<const BlockKey> keys) {
  std::vector<absl::StatusOr<Freed>> results(keys.size(), Freed{});
  std::vector<Entry*> entries(keys.size(), nullptr);
  std::vector<BlockKeyView> removing;
  bool sync = false;
  {
    MutexLock lock(&mu_);
    // Wait until none of them is busy, then take them all at once:
    // holding some while waiting for others could deadlock with another
    // batch doing the same in another order.
    for (;;) {
      bool busy = false;
      for (const BlockKey& key : keys) {
        const Entry* e = Find(key);
        busy = busy || (e != nullptr && e->io != Io::kIdle);
      }
      if (!busy) break;
      io_done_.Wait(&mu_);
    }
    for (size_t i = 0; i < keys.size(); ++i) {
      Entry* e = Find(keys[i]);
      if (e == nullptr || e->io != Io::kIdle) {  // absent, or listed twice
        results[i] = absl::NotFoundError(
            absl::StrCat("block ", keys[i].ToString(),
                         " is not registered; call RegisterBlock"));
        continue;
      }
      Count(*e, -1);  // a block being removed counts nowhere
      e->io = Io::kRemoving;
      entries[i] = e;
      removing.push_back(keys[i]);
      // Sync when an extent is released, so it is only reused once no
      // durable record points to it.
      sync = sync || e->disk.has_value();
    }
  }
  if (removing.empty()) return results;
  if (absl::Status s = meta_->DeleteBatch(removing, sync); !s.ok()) {
    MutexLock lock(&mu_);
    for (size_t i = 0; i < keys.size(); ++i) {
      if (entries[i] == nullptr) continue;
      entries[i]->io = Io::kIdle;
      Count(*entries[i], +1);
      results[i] = s;
    }
    io_done_.SignalAll();
    return results;
  }
  std::vector<Extent> extents;
  {
    MutexLock lock(&mu_);
    for (size_t i = 0; i < keys.size(); ++i) {
      Entry* e = entries[i];
      if (e == nullptr) continue;
      Freed& freed = *results[i];
      if (e->ram() != nullptr) {
        freed.ram_bytes = e->attrs.size_bytes;
        ram_used_ -= e->attrs.size_bytes;
      }
      if (e->disk) {
        extents.push_back(e->disk->extent());
        freed.disk_bytes = e->disk->extent().length;
      }
      NoteLeavingRam(*e);
      UnindexSequence(*e);
      policy_->Remove(e->handle(), policy::RemoveReason::kErased);
      by_key_.erase(e);
      blocks_.erase(blocks_.find(e->compact()));  // destroys e
    }
    UpdatePoolLimit();
    io_done_.SignalAll();
  }
  if (!extents.empty()) disk_->FreeMany(std::move(extents));
  return results;
}

void BlockStore::SetRamBudget(uint64_t bytes) {
  {
    MutexLock lock(&mu_);
    ram_budget_ = bytes;
    policy_->SetCapacity(bytes);
    UpdatePoolLimit();
    io_done_.SignalAll();
  }
  buffers_->Trim();
}

void BlockStore::UpdatePoolLimit() {
  // Reserved bytes are left in: a reservation is what a cached buffer is
  // about to serve.
  buffers_->SetLimit(ram_budget_ > ram_used_ ? ram_budget_ - ram_used_ : 0);
}

uint64_t BlockStore::ram_budget() const {
  ReaderMutexLock lock(&mu_);
  return ram_budget_;
}

void BlockStore::SetAlgorithm(policy::Algorithm algorithm) {
  MutexLock lock(&mu_);
  if (policy_->algorithm() == algorithm) return;
  // The old policy tracks exactly the resident entries (an entry joins it
  // when its bytes come into RAM and leaves when they go), so the switch
  // takes time in the resident count, not the registered one.
  std::vector<Entry*> resident;
  resident.reserve(policy_->size());
  policy_->ForEachResident(
      [&](policy::Handle h) { resident.push_back(Entry::Of(h)); });
  std::sort(resident.begin(), resident.end(), [](Entry* a, Entry* b) {
    return a->last_access_ms < b->last_access_ms;
  });
  auto next = policy::MakePolicy(algorithm);
  next->SetCapacity(ram_budget_);
  for (Entry* e : resident) {
    next->Insert(e->handle(), e->attrs.size_bytes,
                 PriorityOf(e->attrs.region_type));
    if (e->attrs.pinned) next->SetPinned(e->handle(), true);
    // Replay the block's frequency so frequency-aware policies keep it.
    const uint64_t replay = std::min<uint64_t>(e->access_count, 15);
    for (uint64_t i = 0; i < replay; ++i) next->Touch(e->handle());
  }
  policy_ = std::move(next);
  TP_LOG(INFO) << "eviction policy switched to "
               << policy::AlgorithmName(algorithm) << " with "
               << resident.size() << " resident blocks carried over";
}

BlockStore::ReportResult BlockStore::ReportAccesses(
    const std::vector<AccessReport>& reports) {
  ReportResult result;
  MutexLock lock(&mu_);
  const int64_t now = NowMs();
  for (const AccessReport& r : reports) {
    Entry* e = Find(r.key);
    if (e == nullptr) {
      ++result.unknown;
      continue;
    }
    ++result.accepted;
    const uint32_t count = std::max<uint32_t>(r.count, 1);
    e->access_count += count;
    e->last_access_ms = now;
    NoteIfOnDiskOnly(*e);
    counters_.reported += count;
    // Frequency-aware policies see each access; a bounded replay keeps one
    // report cheap however large its count.
    for (uint32_t i = 0; i < std::min<uint32_t>(count, 8); ++i) {
      policy_->Touch(e->handle());
    }
  }
  return result;
}

}  // namespace tensorpager::storage
