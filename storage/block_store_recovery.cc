// BlockStore: rebuilding the index from the metadata records at start.
#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "storage/block_store.h"
#include "storage/block_store_internal.h"
#include "storage/record_scan.h"

namespace tensorpager::storage {
BlockStore::EntryPtr BlockStore::EntryFromRecord(BlockKeyView key,
                                                 const BlockRecordProto& r,
                                                 BlockRecordProto& scratch) {
  EntryPtr e = NewEntry(key);
  e->attrs = PackedAttributes::FromRecord(r, scratch);
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
  e->last_access_ms =
      std::clamp<int64_t>(r.last_access_unix_ms(), 0, Entry::kMaxTimeMs);
  e->created_ms =
      std::clamp<int64_t>(r.created_unix_ms(), 0, Entry::kMaxTimeMs);
  if (!r.lost_reason().empty()) {
    e->set_lost_reason(std::string(r.lost_reason()));
  } else if (!invalid.empty()) {
    e->set_lost_reason(absl::StrCat(
        "its metadata record is invalid after restart (", invalid, ")"));
  }
  std::optional<DiskCopy> copy = DiskCopy::FromRecord(r);
  if (copy && e->lost_reason().empty()) {
    e->disk.emplace(*copy);  // claimed later, with all the others
  } else if (r.written() && e->lost_reason().empty()) {
    e->set_lost_reason(
        "it was only in RAM when the server stopped; write it again");
  }
  return e;
}

absl::Status BlockStore::Recover() {
  const absl::Time start = absl::Now();
  // Two threads. The scan's thread reads the records; this one parses
  // them, makes the entries and appends them to the ordered index as
  // batches arrive. Then the extents are claimed in one sorted pass on a
  // second thread while this one builds the hash index. Only this thread
  // makes entries, from entry_arena_, not malloc: the scan's thread
  // allocates too, and the two would contend for the single malloc arena
  // of allocator_tuning.h.
  std::vector<Entry*> on_disk;
  BlockRecordProto record;  // reused, as is the scratch
  BlockRecordProto scratch;
  MutexLock lock(&mu_);
  {
    RecordScan scan(*meta_);
    while (const RecordScan::Batch* batch = scan.Next()) {
      for (size_t i = 0; i < batch->size(); ++i) {
        const BlockKeyView key = batch->key(i);
        if (absl::Status s =
                MetadataStore::ParseRecord(key, batch->value(i), &record);
            !s.ok()) {
          return s;
        }
        EntryPtr e = EntryFromRecord(key, record, scratch);
        if (e->disk) on_disk.push_back(e.get());
        ++recovery_.blocks;
        IndexSequence(e.get());
        // Key order: each entry goes at the ordered index's end.
        blocks_.insert(blocks_.end(), std::move(e));
      }
    }
    if (absl::Status s = scan.status(); !s.ok()) return s;
  }
  std::vector<absl::Status> claims;
  // The claiming thread also finds the most recently used blocks on disk
  // (for SwapInBytes); blocks whose claim fails are forgotten later.
  RecentOnDisk::Collector newest(options_.recent_on_disk_blocks, 0);
  std::thread claimer([&] {
    std::vector<Extent> extents;
    std::vector<uint64_t> stored_bytes;
    extents.reserve(on_disk.size());
    stored_bytes.reserve(on_disk.size());
    for (const Entry* e : on_disk) {
      extents.push_back(e->disk->extent());
      stored_bytes.push_back(e->disk->stored_bytes());
      // In the same pass: a second one over ten million entries cost a
      // cache miss each.
      newest.Offer(e->last_access_ms, e->compact(), 0);
    }
    claims = disk_->ClaimMany(extents, stored_bytes);
  });
  by_key_.reserve(blocks_.size());
  for (const EntryPtr& e : blocks_) by_key_.insert(e.get());
  claimer.join();
  recent_on_disk_.BeginScan();
  std::move(newest).EndScan(recent_on_disk_);
  for (size_t i = 0; i < on_disk.size(); ++i) {
    Entry* e = on_disk[i];
    if (claims[i].ok()) {
      ++recovery_.blocks_on_disk;
      recovery_.bytes_on_disk += e->attrs.size_bytes;
    } else {
      e->disk.reset();
      e->set_lost_reason(
          absl::StrCat("its disk extent is invalid after restart (",
                       claims[i].message(), ")"));
    }
  }
  for (const EntryPtr& e : blocks_) {
    if (!e->lost_reason().empty()) ++recovery_.blocks_lost;
    Count(*e, +1);
  }
  recovery_.duration = absl::Now() - start;
  return absl::OkStatus();
}

}  // namespace tensorpager::storage
