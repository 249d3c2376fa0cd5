// BlockStore: the kept tally, Stats, List and Lookup.

#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "storage/block_store.h"
#include "storage/block_store_internal.h"

namespace tensorpager::storage {

absl::StatusOr<ListPage> BlockStore::List(const ListFilter& filter,
                                          uint32_t page_size,
                                          const std::string& page_token) const {
  std::string after;
  if (!page_token.empty() && !absl::WebSafeBase64Unescape(page_token, &after)) {
    return absl::InvalidArgumentError(
        "page_token is malformed; pass the next_page_token of the previous "
        "response unchanged");
  }
  const std::string ns =
      filter.ns.empty() ? std::string(kDefaultNamespace) : filter.ns;
  const std::string prefix =
      filter.all_namespaces ? "" : ns + std::string(1, '\0') + filter.id_prefix;
  ListPage page;
  std::string last_returned;
  // A rare filter may pass over many blocks: ScanEntries lets go of the
  // lock between chunks, so the data path never stalls for long.
  ScanEntries(
      after.empty() ? prefix : after, /*past=*/!after.empty(),
      [&](const Entry& e) {
        if (!filter.all_namespaces &&
            !compact_name::StartsWith(e.compact(), prefix)) {
          return false;
        }
        if (e.io == Io::kRemoving) return true;
        if (filter.all_namespaces &&
            !compact_name::IdStartsWith(e.compact(), filter.id_prefix)) {
          return true;
        }
        if (filter.region_type && e.attrs.region_type != *filter.region_type) {
          return true;
        }
        if (filter.pinned && e.attrs.pinned != *filter.pinned) {
          return true;
        }
        const Tier tier = TierOf(e);
        if (filter.tier && tier != *filter.tier) {
          // RAM_AND_DISK counts as both RAM and DISK for filtering.
          const bool both =
              tier == Tier::kRamAndDisk &&
              (*filter.tier == Tier::kRam || *filter.tier == Tier::kDisk);
          if (!both) return true;
        }
        if (page.blocks.size() == page_size) {
          page.next_page_token = absl::WebSafeBase64Escape(last_returned);
          return false;
        }
        page.blocks.push_back(InfoOf(e));
        last_returned = compact_name::ToEncoded(e.compact());
        return true;
      });
  return page;
}

void BlockStore::ScanEntries(
    absl::string_view from, bool past,
    absl::FunctionRef<bool(const Entry&)> visit) const {
  // Entries are searched by compact name (storage/compact_name.h).
  std::string resume = compact_name::FromEncoded(from);
  for (;;) {
    ReaderMutexLock lock(&mu_);
    auto it = past ? blocks_.upper_bound(absl::string_view(resume))
                   : blocks_.lower_bound(absl::string_view(resume));
    for (size_t n = 0; it != blocks_.end() && n < kListScanPerLock; ++it, ++n) {
      if (!visit(**it)) return;
    }
    if (it == blocks_.end()) return;
    // Past the last entry seen: the key is copied once per chunk.
    resume = std::string((*std::prev(it))->compact());
    past = true;
  }
}

std::vector<std::optional<BlockStore::Presence>> BlockStore::Lookup(
    absl::Span<const BlockKeyView> keys) const {
  std::vector<std::optional<Presence>> out(keys.size());
  // One buffer for every key's compact name: a lookup of a batch
  // allocates nothing per key.
  std::string names;
  std::vector<size_t> ends(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    const compact_name::Buffer name(keys[i]);
    names.append(name.view().data(), name.view().size());
    ends[i] = names.size();
  }
  const auto name = [&](size_t i) {
    const size_t begin = i == 0 ? 0 : ends[i - 1];
    return absl::string_view(names).substr(begin, ends[i] - begin);
  };
  std::vector<const Entry*> found(keys.size());
  ReaderMutexLock lock(&mu_);
  // At millions of blocks every key misses the CPU caches (and the TLB)
  // at its hash slot, at its entry's name and at its entry's fields; one
  // after another, those misses made a Lookup 1.45x slower at 10M blocks
  // than at 10k. So each stage asks for the next stage's lines of every
  // key before reading any, and the misses overlap.
  for (size_t i = 0; i < keys.size(); ++i) by_key_.prefetch(name(i));
  for (size_t i = 0; i < keys.size(); ++i) {
    found[i] = FindCompact(name(i));
    if (found[i] != nullptr) found[i]->Prefetch();
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    if (found[i] == nullptr || found[i]->io == Io::kRemoving) continue;
    const Entry& e = *found[i];
    out[i] = Presence{.tier = TierOf(e), .size_bytes = e.attrs.size_bytes};
  }
  return out;
}

void BlockStore::Count(const Entry& e, int sign) {
  if (e.io == Io::kRemoving) return;
  Tally& t = tally_;
  const int64_t size = static_cast<int64_t>(e.attrs.size_bytes) * sign;
  t.blocks_registered += sign;
  const int region = static_cast<int>(e.attrs.region_type);
  t.blocks_by_region[region] += sign;
  t.bytes_by_region[region] += size;
  if (e.attrs.pinned) {
    t.blocks_pinned += sign;
    t.pinned_bytes += size;
  }
  if (e.disk && e.lost_reason().empty()) {
    t.disk_stored_bytes += static_cast<int64_t>(e.disk->stored_bytes()) * sign;
    if (e.disk->compressed()) t.blocks_compressed += sign;
  }
  const Tier tier = TierOf(e);
  CountNamespace(e, tier, sign);
  switch (tier) {
    case Tier::kLost:
      t.blocks_lost += sign;
      break;
    case Tier::kEmpty:
      t.blocks_empty += sign;
      break;
    case Tier::kRam:
      t.blocks_in_ram += sign;
      break;
    case Tier::kDisk:
      t.blocks_on_disk += sign;
      t.disk_bytes += size;
      break;
    case Tier::kRamAndDisk:
      t.blocks_in_ram += sign;
      t.blocks_on_disk += sign;
      t.disk_bytes += size;
      break;
  }
}

void BlockStore::CountNamespace(const Entry& e, Tier tier, int sign) {
  auto it = tally_.by_namespace.try_emplace(e.ns()).first;
  NamespaceUsage& n = it->second;
  // Unsigned fields: -1 wraps and +1 wraps back, and every -1 follows a
  // +1 of the same entry (Recount), so no field is ever left wrapped.
  const uint64_t one = static_cast<uint64_t>(static_cast<int64_t>(sign));
  const uint64_t size = e.attrs.size_bytes * one;
  n.blocks += one;
  n.bytes += size;
  if (tier == Tier::kRam || tier == Tier::kRamAndDisk) {
    n.blocks_in_ram += one;
    n.ram_bytes += size;
  }
  if (tier == Tier::kDisk || tier == Tier::kRamAndDisk) {
    n.blocks_on_disk += one;
    n.disk_bytes += size;
  }
  if (n.blocks == 0) tally_.by_namespace.erase(it);
}

absl::flat_hash_map<std::string, NamespaceUsage> BlockStore::UsageByNamespace()
    const {
  ReaderMutexLock lock(&mu_);
  return tally_.by_namespace;
}

NamespaceUsage BlockStore::SumUsage(
    const std::function<bool(absl::string_view ns)>& include) const {
  NamespaceUsage sum;
  ReaderMutexLock lock(&mu_);
  for (const auto& [ns, u] : tally_.by_namespace) {
    if (!include(ns)) continue;
    sum.blocks += u.blocks;
    sum.bytes += u.bytes;
    sum.blocks_in_ram += u.blocks_in_ram;
    sum.blocks_on_disk += u.blocks_on_disk;
    sum.ram_bytes += u.ram_bytes;
    sum.disk_bytes += u.disk_bytes;
  }
  return sum;
}

StoreStats BlockStore::Stats() const {
  StoreStats s;
  DiskTierStats disk = disk_->Stats();
  s.disk = disk.space;
  s.io_engine = std::move(disk.engine);
  s.io_in_flight = disk.in_flight;
  s.compress_attempts = disk.compress_attempts;
  s.compress_skipped = disk.compress_skipped;
  s.buffers = buffers_->Stats();
  ReaderMutexLock lock(&mu_);
  const Tally& t = tally_;
  s.blocks_registered = static_cast<uint64_t>(t.blocks_registered);
  s.blocks_in_ram = static_cast<uint64_t>(t.blocks_in_ram);
  s.blocks_on_disk = static_cast<uint64_t>(t.blocks_on_disk);
  s.blocks_pinned = static_cast<uint64_t>(t.blocks_pinned);
  s.blocks_lost = static_cast<uint64_t>(t.blocks_lost);
  s.blocks_empty = static_cast<uint64_t>(t.blocks_empty);
  s.disk_bytes = static_cast<uint64_t>(t.disk_bytes);
  s.disk_stored_bytes = static_cast<uint64_t>(t.disk_stored_bytes);
  s.blocks_compressed = static_cast<uint64_t>(t.blocks_compressed);
  s.pinned_bytes = static_cast<uint64_t>(t.pinned_bytes);
  for (int i = 0; i < kNumRegionTypes; ++i) {
    s.blocks_by_region[i] = static_cast<uint64_t>(t.blocks_by_region[i]);
    s.bytes_by_region[i] = static_cast<uint64_t>(t.bytes_by_region[i]);
  }
  s.ram_bytes = ram_used_;
  s.ram_budget_bytes = ram_budget_;
  s.ram_hits = counters_.ram_hits;
  s.disk_hits = counters_.disk_hits;
  s.misses = counters_.misses;
  s.swap_outs = counters_.swap_outs;
  s.swap_ins = counters_.swap_ins;
  s.swap_in_scans = counters_.swap_in_scans;
  s.bytes_swapped_out = counters_.bytes_out;
  s.bytes_swapped_in = counters_.bytes_in;
  s.prefetched = counters_.prefetched;
  s.prefetch_hits = counters_.prefetch_hits;
  s.prefetch_wasted = counters_.prefetch_wasted;
  s.accesses_reported = counters_.reported;
  s.swap_out_time = counters_.out_time;
  s.swap_in_time = counters_.in_time;
  s.algorithm = policy_->algorithm();
  return s;
}

}  // namespace tensorpager::storage
