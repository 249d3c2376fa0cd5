// BlockStore: rebuilding the index from the metadata records at start.
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "storage/block_store.h"
#include "storage/block_store_internal.h"

namespace tensorpager::storage {
BlockStore::EntryPtr BlockStore::EntryFromRecord(BlockKeyView key,
                                                 const BlockRecordProto& r) {
  EntryPtr e = NewEntry(key);
  e->attrs = PackedAttributes::FromRecord(r);
  // Values this server never writes make the block lost, not trusted: an
  // unknown region type would index past the per-region tallies, an
  // unknown codec would compress under another codec's name.
  std::string invalid;
  if (r.region_type() >= kNumRegionTypes) {
    invalid = absl::StrCat("unknown region type ", r.region_type());
    e->attrs.region_type = RegionType::kTensorData;
  }
  if (r.requested_codec() > static_cast<uint32_t>(Codec::kZstd)) {
    invalid = absl::StrCat("unknown codec ", r.requested_codec());
    e->attrs.codec.reset();
  }
  e->written = r.written();
  e->version = r.version();
  e->checksum = r.checksum();
  e->access_count = r.access_count();
  e->last_access_ms = r.last_access_unix_ms();
  e->created_ms = r.created_unix_ms();
  if (!r.lost_reason().empty()) {
    e->lost_reason = std::string(r.lost_reason());
  } else if (!invalid.empty()) {
    e->lost_reason = absl::StrCat(
        "its metadata record is invalid after restart (", invalid, ")");
  }
  std::optional<DiskCopy> copy = DiskCopy::FromRecord(r);
  if (copy && e->lost_reason.empty()) {
    e->disk.emplace(*copy);  // claimed later, with all the others
  } else if (r.written() && e->lost_reason.empty()) {
    e->lost_reason =
        "it was only in RAM when the server stopped; write it again";
  }
  return e;
}

absl::Status BlockStore::Recover() {
  const absl::Time start = absl::Now();
  // One thread: the entries' allocations dominate, and the server runs
  // one malloc arena (allocator_tuning.h), on which two scanning threads
  // took 3.1 s for a million records against one thread's 2.3 s.
  std::vector<EntryPtr> entries;
  if (absl::Status s =
          meta_->ForEach([&](BlockKeyView key, const BlockRecordProto& r) {
            entries.push_back(EntryFromRecord(key, r));
            return absl::OkStatus();
          });
      !s.ok()) {
    return s;
  }
  MutexLock lock(&mu_);
  std::vector<Entry*> on_disk;  // claimed in one pass below
  by_key_.reserve(entries.size());
  // The records come in key order, so each goes at the ordered index's end.
  for (EntryPtr& e : entries) {
    ++recovery_.blocks;
    if (e->disk) on_disk.push_back(e.get());
    IndexSequence(e.get());
    Index(std::move(e));
  }
  std::vector<EntryPtr>().swap(entries);
  std::vector<Extent> extents;
  std::vector<uint64_t> stored_bytes;
  extents.reserve(on_disk.size());
  stored_bytes.reserve(on_disk.size());
  for (const Entry* e : on_disk) {
    extents.push_back(e->disk->extent());
    stored_bytes.push_back(e->disk->stored_bytes());
  }
  const std::vector<absl::Status> claims =
      disk_->ClaimMany(extents, stored_bytes);
  for (size_t i = 0; i < on_disk.size(); ++i) {
    Entry* e = on_disk[i];
    if (claims[i].ok()) {
      ++recovery_.blocks_on_disk;
      recovery_.bytes_on_disk += e->attrs.size_bytes;
    } else {
      e->disk.reset();
      e->lost_reason =
          absl::StrCat("its disk extent is invalid after restart (",
                       claims[i].message(), ")");
    }
  }
  for (const EntryPtr& e : blocks_) {
    if (!e->lost_reason.empty()) ++recovery_.blocks_lost;
    Count(*e, +1);
  }
  recovery_.duration = absl::Now() - start;
  return absl::OkStatus();
}

}  // namespace tensorpager::storage
